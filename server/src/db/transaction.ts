import type { Db } from './database.js';

const pending = new WeakMap<Db, (() => void)[]>();

/**
 * Runs fn now when no transaction is open, else once the outermost transaction has committed (and
 * never if it rolls back). Stores keep their in-memory state this way: a change the database
 * refused is never shown.
 */
export function afterCommit(db: Db, fn: () => void): void {
  if (!db.inTransaction) return fn();
  let queue = pending.get(db);
  if (!queue) pending.set(db, (queue = []));
  queue.push(fn);
}

/** db.transaction(fn)() that also runs (or drops) the afterCommit callbacks queued inside it. */
export function inTransaction<T>(db: Db, fn: () => T): T {
  const outermost = !db.inTransaction;
  let result: T;
  try {
    result = db.transaction(fn)();
  } catch (err) {
    if (outermost) pending.delete(db);
    throw err;
  }
  if (outermost) {
    const queue = pending.get(db) ?? [];
    pending.delete(db);
    for (const callback of queue) callback();
  }
  return result;
}

/**
 * Until every store is async: callbacks that stores still on `Db` queued inside an `Sql`
 * transaction (which this file does not see commit) run after it, through sql.afterCommit.
 */
export function settleSyncCallbacks(db: Db, afterCommitOfSql: (fn: () => void) => void): void {
  const queue = pending.get(db);
  pending.delete(db);
  for (const callback of queue ?? []) afterCommitOfSql(callback);
}

/** The same when the `Sql` transaction rolled back: they never run. */
export function dropSyncCallbacks(db: Db): void {
  pending.delete(db);
}
