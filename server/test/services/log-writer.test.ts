import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { DemoRegistry } from '../../src/live/demo-registry.js';
import { DemosRepository } from '../../src/repositories/demos-repository.js';
import { LogsRepository, type StoredLog } from '../../src/repositories/logs-repository.js';
import { FaultInjector } from '../../src/services/fault-injection.js';
import { LogWriter, type LineCounter } from '../../src/services/log-writer.js';
import type { StoreFailure } from '../../src/services/store-failure.js';
import { memoryDb, newRecord, NODE_ID, silentLog } from '../support/memory-db.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';
import { waitFor } from '../support/test-server.js';

type Answer = { stored: StoredLog[]; duplicates: number } | { failure: StoreFailure };

/** Batches of lines [from, from+count) into a writer, each answer recorded in order. */
function batches(writer: LogWriter, demo?: { nodeId: string; token: string; name: string }) {
  const answers: Answer[] = [];
  const batch = (from: number, count: number) => writer.write({
    nodeId: NODE_ID,
    records: Array.from({ length: count }, (_, i) => newRecord(from + i)),
    demo,
    stored: (stored, duplicates) => answers.push({ stored, duplicates }),
    failed: (failure) => answers.push({ failure }),
  });
  return { answers, batch };
}

const storedMessages = async (logs: LogsRepository) => (await logs.search({ limit: 1000 })).records.map((r) => r.message).reverse();
const summary = (answers: Answer[]) => answers.map((a) => ('failure' in a ? a.failure.code : [a.stored.length, a.duplicates]));

/** Demo line counts are the demo registry's (SQLite until its own conversion lands); the writer itself runs on both. */
const noDemoCounts: LineCounter = { storeLineCounts: () => undefined, countLines: () => undefined, recordClosing: () => undefined };

describe.each(storeKinds)('log writer on $name', (kind) => {
  let store: StoreUnderTest;
  let logs: LogsRepository;
  let faults: FaultInjector;
  let writer: LogWriter;
  // One database for the suite (making one takes seconds on PostgreSQL), emptied before each test.
  beforeAll(async () => { store = await kind.open(); });
  afterAll(() => store.close());
  beforeEach(async () => {
    await store.sql.run('DELETE FROM log_records');
    logs = await LogsRepository.open(store.sql);
    faults = new FaultInjector();
    writer = new LogWriter(store.sql, logs, noDemoCounts, faults, silentLog);
  });

  it('refuses only the batch that failed; the others of the same transaction are stored, answered after the commit', async () => {
    faults.arm('log-store', 2);
    const { answers, batch } = batches(writer);
    batch(0, 3);
    batch(3, 3);
    batch(6, 3);
    expect(answers).toEqual([]);
    await writer.flush();
    expect(summary(answers)).toEqual([[3, 0], 'storage_failed', [3, 0]]);
    expect(await storedMessages(logs)).toEqual(['line 0', 'line 1', 'line 2', 'line 6', 'line 7', 'line 8']);
    await new Promise((resolve) => setImmediate(resolve)); // the recount after a refused batch
    expect(logs.storedBytes).toBe((await LogsRepository.open(store.sql)).storedBytes);
  });

  it('answers every batch of a committed write even when the memory bookkeeping of one throws', async () => {
    const counting: LineCounter = { ...noDemoCounts, countLines: () => { throw new Error('a demo counter failed'); } };
    writer = new LogWriter(store.sql, logs, counting, faults, silentLog);
    const withDemo = batches(writer, { nodeId: NODE_ID, token: 't', name: 'face-tracker' });
    const plain = batches(writer);
    withDemo.batch(0, 2);
    plain.batch(2, 2);
    withDemo.batch(4, 2);
    await writer.flush();
    expect(summary([...withDemo.answers, ...plain.answers])).toEqual([[2, 0], [2, 0], [2, 0]]);
    expect(await storedMessages(logs)).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4', 'line 5']);
  });

  it('refuses alone a batch the database rejects, the others of its transaction stored', async () => {
    const { answers, batch } = batches(writer);
    batch(0, 2);
    writer.write({
      nodeId: NODE_ID,
      records: [newRecord(2), { ...newRecord(3), source: 'bogus' as 'demo' }], // breaks the table's CHECK
      stored: (stored, duplicates) => answers.push({ stored, duplicates }),
      failed: (failure) => answers.push({ failure }),
    });
    batch(4, 2);
    await writer.flush();
    expect(summary(answers)).toEqual([[2, 0], 'storage_failed', [2, 0]]);
    expect(await storedMessages(logs)).toEqual(['line 0', 'line 1', 'line 4', 'line 5']);
  });

  it('stores a refused batch sent again exactly once, and counts duplicates of one stored before', async () => {
    faults.arm('log-store', 1);
    const { answers, batch } = batches(writer);
    batch(0, 5);
    await writer.flush();
    batch(0, 5); // the agent sends it again
    batch(3, 4); // overlapping the first
    await writer.flush();
    expect(summary(answers)).toEqual(['storage_failed', [5, 0], [2, 2]]);
    expect(await storedMessages(logs)).toEqual(Array.from({ length: 7 }, (_, i) => `line ${i}`));
  });

  it('takes batches that come during a write into the next one, each answered once, none lost', async () => {
    const { answers, batch } = batches(writer);
    batch(0, 2);
    const first = writer.flush();
    batch(2, 2); // while the first write runs
    batch(2, 2); // and the same lines again
    await first;
    await writer.flush();
    expect(summary(answers)).toEqual([[2, 0], [2, 0], [0, 2]]);
    expect(await storedMessages(logs)).toEqual(['line 0', 'line 1', 'line 2', 'line 3']);
  });

  it('answers every batch at once with storage_full while the disk is full, writing nothing', async () => {
    writer.refusal = () => ({ code: 'storage_full', message: 'the disk is full', retryAfterMs: 5000 });
    const { answers, batch } = batches(writer);
    batch(0, 2);
    expect(answers).toEqual([{ failure: { code: 'storage_full', message: 'the disk is full', retryAfterMs: 5000 } }]);
    await writer.flush();
    expect(await storedMessages(logs)).toEqual([]);
  });
});

describe('log writer with the demo registry (SQLite)', () => {
  let db: Db;
  beforeEach(() => { db = memoryDb(); });
  afterEach(() => db.close());

  it('adds stored lines to the demo counters in the same transaction, and in memory after the commit', async () => {
    const sql = new SqliteSql(db);
    const logs = await LogsRepository.open(sql);
    const demos = new DemoRegistry(new DemosRepository(sql));
    const faults = new FaultInjector();
    const writer = new LogWriter(sql, logs, demos, faults, silentLog);
    faults.arm('log-store', 2);
    const { answers, batch } = batches(writer, { nodeId: NODE_ID, token: 't', name: 'face-tracker' });
    batch(0, 3);
    batch(3, 3);
    batch(6, 3);
    await writer.flush();
    expect(summary(answers)).toEqual([[3, 0], 'storage_failed', [3, 0]]);
    expect(demos.list(NODE_ID)[0]).toMatchObject({ line_count: 6 });
    expect(db.prepare('SELECT line_count FROM demos').get()).toEqual({ line_count: 6 });
  });
});

describe.runIf(storeKinds.some((k) => k.name === 'postgres'))('log writer lanes (PostgreSQL)', () => {
  let store: StoreUnderTest;
  let blocker: pg.Client | undefined;
  beforeAll(async () => { store = await storeKinds.find((k) => k.name === 'postgres')!.open(); });
  afterAll(() => store.close());
  afterEach(async () => { await blocker?.end(); blocker = undefined; });

  it("stores other nodes' lines while one node's write waits, and that node's batches in the order they came", async () => {
    const logs = await LogsRepository.open(store.sql);
    const writer = new LogWriter(store.sql, logs, noDemoCounts, new FaultInjector(), silentLog);
    // Another session holds line 0 of the held node uncommitted: that node's insert waits on it.
    const held = '0a1b2c3d-0000-4000-8000-000000000010';
    blocker = new pg.Client({ connectionString: store.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query(`INSERT INTO log_records (node_id, source, stream, "offset", ts, level, message, size)
      VALUES ($1, 'demo', 'demo:t:0', 0, 0, 2, 'held', 1)`, [held]);
    const answered: string[] = [];
    const send = (nodeId: string, from: number) => writer.write({
      nodeId,
      records: [newRecord(from, `${nodeId.slice(-2)} line ${from}`, { nodeId }), newRecord(from + 1, `${nodeId.slice(-2)} line ${from + 1}`, { nodeId })],
      stored: () => answered.push(`${nodeId.slice(-2)}:${from}`),
      failed: (failure) => answered.push(`${nodeId.slice(-2)}:${from} ${failure.code}`),
    });
    const others = ['11', '12', '13'].map((n) => `0a1b2c3d-0000-4000-8000-0000000000${n}`);
    send(held, 0);
    for (const node of others) send(node, 0);
    send(held, 2);
    // Nodes in the other lane are stored while the held node waits (the lane of a node is fixed).
    await waitFor(async () => answered.length > 0);
    expect(answered.some((a) => a.startsWith('10:'))).toBe(false);
    await blocker.query('ROLLBACK');
    await writer.flush();
    expect(answered.filter((a) => a.startsWith('10:'))).toEqual(['10:0', '10:2']);
    expect(answered).toHaveLength(5);
    const stored = (await logs.search({ nodeId: held, limit: 10 })).records.map((r) => r.message).reverse();
    expect(stored).toEqual(['10 line 0', '10 line 1', '10 line 2', '10 line 3']);
  });
});
