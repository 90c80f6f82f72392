// Log retention on PostgreSQL: by age, and by the log table's size on disk (pg_total_relation_size)
// against the cap. (On SQLite, retention measures its files: routes/logs.test.ts.)
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LogsRepository } from '../../src/repositories/logs-repository.js';
import { LogRetention } from '../../src/services/log-retention.js';
import { PostgresLogSpace } from '../../src/services/postgres-log-space.js';
import { newRecord, silentLog } from '../support/memory-db.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

const postgres = storeKinds.filter((kind) => kind.name === 'postgres');
// Without a reachable PostgreSQL (outside CI: support/stores.ts says so) the file has nothing to run.
if (postgres.length === 0) it.skip('log retention on postgres (PostgreSQL not reachable)', () => undefined);
const DAY = 86_400_000;
const line = (i: number) => `camera ${i}: frame processed, queue depth 3, detector yolo-tiny, score 0.87 ${'x'.repeat(200)}`;

describe.each(postgres)('log retention on $name', { timeout: 30_000 }, (kind) => {
  let store: StoreUnderTest;
  let logs: LogsRepository;
  beforeAll(async () => { store = await kind.open(); });
  afterAll(() => store.close());
  beforeEach(async () => {
    await store.sql.run('DELETE FROM log_records');
    await store.sql.run('VACUUM FULL log_records');
    logs = await LogsRepository.open(store.sql);
  });

  const retention = (maxBytes: number, maxAgeMs = 365 * DAY, repository = logs) => {
    const space = new PostgresLogSpace(repository);
    return new LogRetention(repository, space, space, space.measure, { maxAgeMs, maxBytes, minFreeBytes: 0, walLimitBytes: 1 << 20, intervalMs: 60_000 }, silentLog);
  };
  const count = async () => (await store.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM log_records'))!.n;

  it('deletes records older than the age limit, keeping the newest', async () => {
    const now = newRecord(0).ts;
    await logs.insertNew(Array.from({ length: 10 }, (_, i) => newRecord(i, line(i), { ts: now - (10 - i) * DAY })));
    expect((await retention(1 << 30, 3.5 * DAY).run(now)).deleted).toBe(7);
    expect(await count()).toBe(3);
  });

  it('deletes the oldest records while the table is over the cap, down to under it, and not again once under', async () => {
    for (let i = 0; i < 10; i++) await logs.insertNew(Array.from({ length: 500 }, (_, j) => newRecord(i * 500 + j, line(i * 500 + j))));
    const before = await logs.tableBytes();
    const cap = Math.round(before * 0.6);
    const keeper = retention(cap);
    const { deleted } = await keeper.run();
    expect(deleted).toBeGreaterThan(0);
    expect(deleted).toBeLessThan(5000);
    // What is left fits in the cap: its share of the rows, at the table's size, is under it.
    expect(((5000 - deleted) / 5000) * before).toBeLessThan(cap);
    const oldest = (await logs.search({ limit: 1, afterId: 0 })).records[0]!;
    expect(oldest.message).toBe(line(deleted));
    // The table did not shrink (its room is reused), yet a second run finds nothing to delete.
    expect(await logs.tableBytes()).toBeGreaterThan(cap);
    expect((await keeper.run()).deleted).toBe(0);
  });

  /** Records 5000 records through `writer`; the table's size then. */
  const fill = async (writer: LogsRepository, from = 0, n = 5000) => {
    for (let i = from; i < from + n; i += 500) await writer.insertNew(Array.from({ length: 500 }, (_, j) => newRecord(i + j, line(i + j))));
    return logs.tableBytes();
  };

  it('a stopped retention (a follower, a deposed leader) refuses no logs, and stopping lifts a refusal', async () => {
    const cap = Math.round((await fill(logs)) / 4);
    const keeper = retention(cap);
    keeper.start();
    try {
      await keeper.written();
      expect(keeper.refusal).toMatchObject({ code: 'overloaded' });
      await keeper.stop();
      expect(keeper.refusal).toBeNull();
      // A follower's batches keep coming; the table is still far over the cap, and no refusal comes back.
      await fill(logs, 5000, 500);
      await keeper.written();
      expect(keeper.refusal).toBeNull();
    } finally {
      await keeper.stop();
    }
  });

  it('counts what other replicas wrote and deleted before refusing: a table emptied by the leader is not judged full', async () => {
    // This replica wrote the records and measured the full table (its count says 5000), then another replica leading deleted most of them.
    const full = await fill(logs);
    const cap = Math.round(full * 0.6);
    const space = new PostgresLogSpace(logs);
    expect((await space.measure()).dataBytes).toBeGreaterThan(1.1 * cap);
    const other = await LogsRepository.open(store.sql);
    expect((await retention(cap, 365 * DAY, other).run()).deleted).toBeGreaterThan(0);
    // Leading now: this replica's next batches are judged on what the table holds now.
    const keeper = new LogRetention(logs, space, space, space.measure, { maxAgeMs: 365 * DAY, maxBytes: cap, minFreeBytes: 0, walLimitBytes: 1 << 20, intervalMs: 60_000 }, silentLog);
    keeper.start();
    try {
      await fill(logs, 5000, Math.ceil(keeper.step / 4 / line(0).length / 500) * 500);
      await keeper.written();
      expect(keeper.refusal).toBeNull();
    } finally {
      await keeper.stop();
    }
  });

});
