import type { Sql } from '../../src/db/sql.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { memoryDb } from './memory-db.js';

/** A migrated, empty store of one dialect, for one test. */
export interface StoreUnderTest {
  sql: Sql;
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
    const sql = new SqliteSql(db);
    return { sql, close: async () => { await sql.close(); db.close(); } };
  },
};

/**
 * Every store a repository must work on, for `describe.each(storeKinds)`: one suite, both dialects.
 * PostgreSQL joins the list with its dialect (a database of its own per test).
 */
export const storeKinds: StoreKind[] = [sqlite];
