import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { sqlMatch } from '../search/text-query.js';
import { migrations, type Migration } from './migrations/index.js';

export type Db = Database.Database;

export interface OpenOptions {
  /**
   * Exclusive locking mode, set before the first access: SQLite then keeps the WAL index in the
   * process's memory instead of the -shm file, so a database opens on a disk with no room for
   * that file. No other connection (worker thread) can use the database while it stays so.
   */
  exclusive?: boolean;
}

/** Opens (creating if needed) the SQLite database in WAL mode and brings its schema up to date. */
export function openDatabase(file: string, list: Migration[] = migrations, options: OpenOptions = {}): Db {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  try {
    if (options.exclusive) db.pragma('locking_mode = EXCLUSIVE');
    // Deleted rows give their pages back to the filesystem (PRAGMA incremental_vacuum, run by log
    // retention); only settable before the first table exists (older files: db/store.ts).
    if (db.pragma('page_count', { simple: true }) === 0) db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    // NORMAL is durable against process crashes in WAL mode; only an OS crash can lose the last commits.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    db.function('dvic_match', { deterministic: true }, sqlMatch);
    migrate(db, list);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

export function migrate(db: Db, list: Migration[], target = Math.max(0, ...list.map((m) => m.version))): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  const step = db.transaction((migration: Migration, direction: 'up' | 'down') => {
    db.exec(migration[direction]);
    db.pragma(`user_version = ${direction === 'up' ? migration.version : migration.version - 1}`);
  });
  if (target >= current) {
    for (const m of list.filter((m) => m.version > current && m.version <= target)) step(m, 'up');
  } else {
    for (const m of list.filter((m) => m.version <= current && m.version > target).reverse()) step(m, 'down');
  }
}
