import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate } from '../../src/db/database.js';
import { migrations } from '../../src/db/migrations/index.js';
import { EXACT_BACKLOG_ROWS, unindexedRecordBytes } from '../../src/db/log-search-index.js';
import { DB_FILE, SEARCH_FILE, Store } from '../../src/db/store.js';
import { waitFor } from '../support/test-server.js';

const quiet = { warn: () => undefined, info: () => undefined, error: () => undefined } as never;

let dir: string;
let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A database as the releases before incremental vacuum made it, with `rows` log records. */
function oldDatabase(rows: number): string {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-store-'));
  const file = path.join(dir, DB_FILE);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  migrate(db, migrations);
  const insert = db.prepare(`INSERT INTO log_records (node_id, source, stream, offset, ts, level, message, size) VALUES ('n', 'demo', 's', ?, ?, 2, ?, 264)`);
  db.transaction(() => { for (let i = 0; i < rows; i++) insert.run(i, i, `line ${i} ${'x'.repeat(200)}`); })();
  db.close();
  return file;
}

const searchPages = (db: Database.Database) => (db.pragma('search.page_count', { simple: true }) as number) - (db.pragma('search.freelist_count', { simple: true }) as number);

describe('store', () => {
  it('converts a database made before incremental vacuum, once, keeping its rows; deleted rows then give their space back', () => {
    const file = oldDatabase(20_000);
    const before = fs.statSync(file).size;
    store = Store.open(dir, quiet);
    expect(store.db.pragma('auto_vacuum', { simple: true })).toBe(2); // incremental
    expect(store.db.prepare('SELECT COUNT(*) FROM log_records').pluck().get()).toBe(20_000);

    store.db.prepare('DELETE FROM log_records WHERE id <= 15000').run();
    expect(store.compact()).toBe(true);
    const after = fs.statSync(file).size;
    expect(after).toBeLessThan(before / 2);
    expect(fs.statSync(`${file}-wal`).size).toBe(0);
    expect(store.dataBytes()).toBeLessThanOrEqual(after + fs.statSync(path.join(dir, SEARCH_FILE)).size);
  });

  it('counts what the search index will take for the records it has not indexed yet, and nothing once it has', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-store-'));
    store = Store.open(dir, quiet);
    const db = store.db;
    // Another connection holds the index's write lock: the indexer cannot take the new records yet.
    const holder = new Database(path.join(dir, SEARCH_FILE));
    holder.exec('BEGIN IMMEDIATE');
    // Sizes as LogsRepository stores them: the message's length and 64 bytes of overhead.
    const insert = db.prepare(`INSERT INTO log_records (node_id, source, stream, offset, ts, level, message, size) VALUES ('n', 'demo', 's', ?, ?, 2, ?, ?)`);
    let stored = 0;
    db.transaction(() => {
      for (let i = 0; i < 3000; i++) {
        const message = `line ${i} w${i % 997} x${(i * 7) % 1009} y${(i * 13) % 1013} z${(i * 31) % 2003}`;
        insert.run(i, i, message, message.length + 64);
        stored += message.length + 64;
      }
    })();
    const backlog = store.indexBacklogBytes(stored);
    const before = searchPages(db);
    holder.exec('COMMIT');
    holder.close();
    await waitFor(() => db.prepare('SELECT indexed_up_to FROM search.index_state').pluck().get() === 3000, 15_000, 'the index caught up');
    // What the index grew by, in bytes: the estimate counts it ahead, and not many times over
    // (an overestimate makes retention delete records that would fit).
    const grown = (searchPages(db) - before) * (db.pragma('search.page_size', { simple: true }) as number);
    expect(grown).toBeGreaterThan(0);
    expect(backlog).toBeGreaterThanOrEqual(grown);
    expect(backlog).toBeLessThanOrEqual(2 * grown);
    expect(store.indexBacklogBytes(stored)).toBe(0);
  });

  it('sums the bytes of a short index backlog, and estimates a long one from the stored average instead of scanning it', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-store-'));
    store = Store.open(dir, quiet);
    const db = store.db;
    // Another connection holds the index's write lock: the indexer cannot take the new records yet.
    const holder = new Database(path.join(dir, SEARCH_FILE));
    holder.exec('BEGIN IMMEDIATE');
    try {
      const insert = db.prepare(`INSERT INTO log_records (node_id, source, stream, offset, ts, level, message, size) VALUES ('n', 'demo', 's', ?, ?, 2, 'm', 100)`);
      const add = (from: number, count: number) => db.transaction(() => { for (let i = from; i < from + count; i++) insert.run(i, i); })();
      add(0, 1000);
      // What LogsRepository counted, here twice the rows' sizes: only an estimate would use it.
      expect(unindexedRecordBytes(db, 2 * 1000 * 100)).toBe(1000 * 100);
      add(1000, EXACT_BACKLOG_ROWS);
      const rows = 1000 + EXACT_BACKLOG_ROWS;
      expect(unindexedRecordBytes(db, 2 * rows * 100)).toBe(2 * rows * 100);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  });
});
