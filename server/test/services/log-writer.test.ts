import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { DemoRegistry } from '../../src/live/demo-registry.js';
import { DemosRepository } from '../../src/repositories/demos-repository.js';
import { LogsRepository, type StoredLog } from '../../src/repositories/logs-repository.js';
import { FaultInjector } from '../../src/services/fault-injection.js';
import { LogWriter } from '../../src/services/log-writer.js';
import type { StoreFailure } from '../../src/services/store-failure.js';
import { memoryDb, newRecord, NODE_ID, silentLog } from '../support/memory-db.js';

let db: Db;
let logs: LogsRepository;
let demos: DemoRegistry;
let faults: FaultInjector;
let writer: LogWriter;

beforeEach(() => {
  db = memoryDb();
  logs = new LogsRepository(db);
  demos = new DemoRegistry(new DemosRepository(new SqliteSql(db)));
  faults = new FaultInjector();
  writer = new LogWriter(db, logs, demos, faults, silentLog);
});
afterEach(() => db.close());

type Answer = { stored: StoredLog[]; duplicates: number } | { failure: StoreFailure };

/** Queues a batch of lines [from, from+count) and records its answer. */
function batch(from: number, count: number, answers: Answer[]): void {
  writer.write({
    records: Array.from({ length: count }, (_, i) => newRecord(from + i)),
    demo: { nodeId: NODE_ID, token: 't', name: 'face-tracker' },
    stored: (stored, duplicates) => answers.push({ stored, duplicates }),
    failed: (failure) => answers.push({ failure }),
  });
}

const storedMessages = () => logs.search({ limit: 1000 }).records.map((r) => r.message).reverse();

describe('log writer', () => {
  it('refuses only the batch that failed; the others of the same transaction are stored and counted', () => {
    faults.arm('log-store', 2);
    const answers: Answer[] = [];
    batch(0, 3, answers);
    batch(3, 3, answers);
    batch(6, 3, answers);
    writer.flush();
    expect(answers.map((a) => ('failure' in a ? a.failure.code : a.stored.length))).toEqual([3, 'storage_failed', 3]);
    expect(storedMessages()).toEqual(['line 0', 'line 1', 'line 2', 'line 6', 'line 7', 'line 8']);
    expect(demos.list(NODE_ID)[0]).toMatchObject({ line_count: 6 });
    expect(logs.storedBytes).toBe(new LogsRepository(db).storedBytes);
  });

  it('stores a refused batch sent again exactly once, and counts duplicates of one stored before', () => {
    faults.arm('log-store', 1);
    const answers: Answer[] = [];
    batch(0, 5, answers);
    writer.flush();
    batch(0, 5, answers); // the agent sends it again
    batch(3, 4, answers); // overlapping the first
    writer.flush();
    expect(answers.map((a) => ('failure' in a ? 'failed' : [a.stored.length, a.duplicates]))).toEqual(['failed', [5, 0], [2, 2]]);
    expect(storedMessages()).toEqual(Array.from({ length: 7 }, (_, i) => `line ${i}`));
  });

  it('answers every batch at once with storage_full while the disk is full, writing nothing', () => {
    writer.refusal = () => ({ code: 'storage_full', message: 'the disk is full', retryAfterMs: 5000 });
    const answers: Answer[] = [];
    batch(0, 2, answers);
    expect(answers).toEqual([{ failure: { code: 'storage_full', message: 'the disk is full', retryAfterMs: 5000 } }]);
    writer.flush();
    expect(storedMessages()).toEqual([]);
  });
});
