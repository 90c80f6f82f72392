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
 * Ends what afterCommit(db) queued inside a transaction of the async Sql (sqlite-sql.ts): runs it
 * on commit, drops it on rollback. A bridge while some stores still write synchronously; it goes
 * with this file.
 */
export function endSqlTransaction(db: Db, committed: boolean): void {
  const queue = pending.get(db) ?? [];
  pending.delete(db);
  if (committed) for (const callback of queue) callback();
}
