import type { Db } from './database.js';
import type { Sql } from './sql.js';

const pending = new WeakMap<Db, (() => void)[]>();
/** The async store over each connection: its transactions (audited routes) run these callbacks themselves. */
const asyncStores = new WeakMap<Db, Sql>();
/** Connections inside an inTransaction() of this file. */
const synchronous = new WeakSet<Db>();

/**
 * Until every store is converted: code still on the synchronous connection that asks for
 * afterCommit inside a transaction of the async store (an audited route) is run after that commit.
 */
export function bindSql<S extends Sql>(db: Db, sql: S): S {
  asyncStores.set(db, sql);
  return sql;
}

/**
 * Runs fn now when no transaction is open, else once the outermost transaction has committed (and
 * never if it rolls back). Stores keep their in-memory state this way: a change the database
 * refused is never shown.
 */
export function afterCommit(db: Db, fn: () => void): void {
  if (!db.inTransaction) return fn();
  const sql = asyncStores.get(db);
  if (sql && !synchronous.has(db)) return sql.afterCommit(fn);
  let queue = pending.get(db);
  if (!queue) pending.set(db, (queue = []));
  queue.push(fn);
}

/** db.transaction(fn)() that also runs (or drops) the afterCommit callbacks queued inside it. */
export function inTransaction<T>(db: Db, fn: () => T): T {
  const outermost = !db.inTransaction;
  if (outermost) synchronous.add(db);
  let result: T;
  try {
    result = db.transaction(fn)();
  } catch (err) {
    if (outermost) pending.delete(db);
    throw err;
  } finally {
    if (outermost) synchronous.delete(db);
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
