import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/db/database.js';
import { attachSearchIndex, LogSearchIndex } from '../../src/db/log-search-index.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { LogsRepository, type NewLogRecord } from '../../src/repositories/logs-repository.js';
import { waitFor } from '../support/test-server.js';

let dir: string;
let db: Db;
let sql: SqliteSql;
let logs: LogsRepository;
let index: LogSearchIndex | undefined;
const files = () => ({ logsFile: path.join(dir, 'dvic.sqlite'), indexFile: path.join(dir, 'dvic-search.sqlite') });

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-search-'));
  db = openDatabase(files().logsFile);
  attachSearchIndex(db, files().indexFile);
  sql = new SqliteSql(db);
  logs = await LogsRepository.open(sql);
});
afterEach(async () => {
  await index?.stop();
  index = undefined;
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function store(messages: string[], from = 0): Promise<void> {
  const records: NewLogRecord[] = messages.map((message, i) => ({
    nodeId: 'n1', source: 'demo', stream: 'demo:t:0', offset: (from + i) * 100, demo: 'cam', token: 't', ts: 1_000 + from + i, level: 2, message, fields: null,
  }));
  await logs.insertNew(records);
}

const found = async (q: string) => (await logs.search({ q, limit: 100 })).records.map((r) => r.message);
const indexedUpTo = () => db.prepare('SELECT indexed_up_to FROM search.index_state').pluck().get() as number;
const inIndex = (word: string) => db.prepare('SELECT rowid FROM search.log_fts WHERE log_fts MATCH ?').pluck().all(`"${word}"*`) as number[];
const lastId = () => db.prepare('SELECT MAX(id) FROM log_records').pluck().get() as number;
const startIndexer = () => { index = new LogSearchIndex(files().logsFile, files().indexFile); };
const caughtUp = () => waitFor(() => indexedUpTo() >= lastId(), 10_000, 'index caught up');

describe('full-text search index', () => {
  it('finds records the index has not reached yet, and the same ones once it has', async () => {
    await store(['camera timeout on frame 1', 'frame 2 ok', 'Camera TIMEOUT again', 'log_records full']);
    expect(indexedUpTo()).toBe(0);
    const before = { camera: await found('camera timeout'), prefix: await found('cam'), split: await found('log_records') };
    expect(before).toEqual({
      camera: ['Camera TIMEOUT again', 'camera timeout on frame 1'],
      prefix: ['Camera TIMEOUT again', 'camera timeout on frame 1'],
      split: ['log_records full'],
    });
    startIndexer();
    await caughtUp();
    expect(inIndex('camera')).toHaveLength(2);
    expect({ camera: await found('camera timeout'), prefix: await found('cam'), split: await found('log_records') }).toEqual(before);
  });

  it('indexes new records soon after it is woken', async () => {
    startIndexer();
    await store(['first light']);
    index!.wake();
    await caughtUp();
    await store(['second light'], 1);
    index!.wake();
    await waitFor(() => inIndex('light').length === 2, 10_000, 'second record indexed');
  });

  it('takes deleted records out of the index, and keeps the newest record so ids never go back', async () => {
    await store(Array.from({ length: 50 }, (_, i) => `old line ${i}`));
    startIndexer();
    await caughtUp();
    const deleted = await logs.deleteOlderThan(Number.MAX_SAFE_INTEGER, 1000);
    expect(deleted.ids).toHaveLength(49);
    void index!.forget(deleted.ids);
    await waitFor(() => inIndex('old').length === 1, 10_000, 'deleted records out of the index');
    expect(await found('old')).toEqual(['old line 49']);
    const newest = lastId();
    await store(['new line'], 50);
    expect(lastId()).toBeGreaterThan(newest);
  });

  // A log write holds the main database's write lock while it runs; the index file attached to
  // the same connection must stay writable, or the indexer waits through every write of a stream
  // and the index catches up in bursts, on top of the size cap.
  it('indexes while a log write transaction is open on the connection the index is attached to', async () => {
    await store(['written before']);
    startIndexer();
    // Read through a connection of its own: inside the transaction, this one reads its snapshot.
    const reader = new Database(files().indexFile, { readonly: true });
    try {
      await sql.transaction(async () => {
        await store(['written inside'], 1);
        await waitFor(() => reader.prepare('SELECT indexed_up_to FROM index_state').pluck().get() === 1, 10_000, 'the committed record indexed during the write');
      });
    } finally {
      reader.close();
    }
    await caughtUp();
    expect(inIndex('inside')).toHaveLength(1);
  });

  it('rebuilds a lost index file from the stored records', async () => {
    await store(['alpha one', 'alpha two', 'beta']);
    startIndexer();
    await caughtUp();
    await index!.stop();
    db.exec('DETACH DATABASE search');
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(files().indexFile + suffix, { force: true });
    attachSearchIndex(db, files().indexFile);
    expect(indexedUpTo()).toBe(0);
    startIndexer();
    await caughtUp();
    expect(inIndex('alpha')).toHaveLength(2);
  });
});
