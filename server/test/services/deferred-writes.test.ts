// Deferred writes with asynchronous writes (the async Sql layer): order per key, a refused write
// waits and runs again, other failures are logged, never thrown at nobody. Real SQLite underneath.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { DeferredWrites } from '../../src/services/deferred-writes.js';
import type { StoreFailure } from '../../src/services/store-failure.js';
import { memoryDb, silentLog } from '../support/memory-db.js';

let db: Db;
let sql: SqliteSql;
let failures: StoreFailure[];
let writes: DeferredWrites;
const NODE = 'a0000000-0000-4000-8000-000000000001';

beforeEach(async () => {
  db = memoryDb();
  sql = new SqliteSql(db);
  failures = [];
  writes = new DeferredWrites((f) => failures.push(f), silentLog);
  await sql.run("INSERT INTO nodes (id, name, public_key, created_at, status_since) VALUES (?, 'pi', 'k', 0, 0)", [NODE]);
});
afterEach(() => db.close());

const setStatus = (status: string, delayMs = 0) => async () => {
  // A slow first write must not be overtaken by a quick later one of the same row.
  if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
  await sql.run('UPDATE nodes SET status = ? WHERE id = ?', [status, NODE]);
};
const status = () => (db.prepare('SELECT status FROM nodes WHERE id = ?').get(NODE) as { status: string }).status;

describe('deferred writes, asynchronous', () => {
  it('writes a row in the order its writes were made, however long each takes', async () => {
    expect(writes.run(`node:${NODE}`, setStatus('online', 30))).toBe(true);
    writes.run(`node:${NODE}`, setStatus('offline'));
    writes.run(`node:${NODE}`, setStatus('revoked', 5));
    await writes.settled();
    expect(status()).toBe('revoked');
  });

  it('keeps a write the disk refuses and runs it once it has room, the latest per key', async () => {
    db.pragma('query_only = 1'); // every write fails, as on a full disk
    writes.run(`node:${NODE}`, setStatus('online'));
    await writes.settled();
    expect([writes.size, failures.length]).toEqual([1, 1]);
    writes.run(`node:${NODE}`, setStatus('offline')); // still refused: replaces the waiting one
    await writes.settled();
    expect(writes.size).toBe(1);
    db.pragma('query_only = 0');
    await writes.retry();
    expect([writes.size, status()]).toEqual([0, 'offline']);
  });

  it('logs a write that fails for another reason and goes on (no unhandled rejection)', async () => {
    writes.run('bad', () => sql.run('INSERT INTO no_such_table VALUES (1)'));
    writes.run(`node:${NODE}`, setStatus('online'));
    await writes.settled();
    expect([writes.size, failures.length, status()]).toEqual([0, 0, 'online']);
  });

  it('still runs a synchronous write at once, and throws its failure to the caller', () => {
    writes.run(`node:${NODE}`, () => db.prepare('UPDATE nodes SET status = ? WHERE id = ?').run('online', NODE));
    expect(status()).toBe('online');
    expect(() => writes.run('bad', () => db.prepare('INSERT INTO no_such_table VALUES (1)').run())).toThrow(/no such table/);
  });
});
