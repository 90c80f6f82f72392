import { PostgresSql } from '../../src/db/postgres-sql.js';
import type { Sql } from '../../src/db/sql.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { memoryDb } from './memory-db.js';
import { postgresReachable, testDatabase } from './postgres.js';

/** A migrated, empty store of one dialect, for one test. */
export interface StoreUnderTest {
  sql: Sql;
  /** What the store reported of afterCommit callbacks that threw. */
  callbackErrors: Error[];
  /** PostgreSQL: the database's URL, for a session of a test's own beside the store's pool. */
  url?: string;
  close(): Promise<void>;
}

export interface StoreKind {
  name: 'sqlite' | 'postgres';
  open(): Promise<StoreUnderTest>;
}

const sqlite: StoreKind = {
  name: 'sqlite',
  async open() {
    const db = memoryDb();
    const callbackErrors: Error[] = [];
    const sql = new SqliteSql(db, { onCallbackError: (err) => callbackErrors.push(err) });
    return { sql, callbackErrors, close: async () => { await sql.close(); db.close(); } };
  },
};

/** A database of its own per open(), migrated; close() drops it. */
const postgres: StoreKind = {
  name: 'postgres',
  async open() {
    const database = await testDatabase();
    const callbackErrors: Error[] = [];
    const sql = new PostgresSql({ url: database.url, poolSize: 4, onCallbackError: (err) => callbackErrors.push(err) });
    return { sql, callbackErrors, url: database.url, close: async () => { await sql.close(); await database.drop(); } };
  },
};

/**
 * Every store a repository must work on, for `describe.each(storeKinds)`: one suite, both dialects.
 * Without a reachable PostgreSQL its suites are left out (a warning says so); under CI=true that
 * fails the file instead.
 */
export const storeKinds: StoreKind[] = (await postgresReachable()) ? [sqlite, postgres] : [sqlite];
if (storeKinds.length === 1) console.warn(`PostgreSQL is not reachable: the postgres store tests are skipped`);
