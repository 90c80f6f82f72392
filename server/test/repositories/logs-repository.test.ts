// The log store on each dialect: exactly-once inserts, filters, paging, retention deletes, and
// what `q` finds (the shared cases of support/text-cases.ts), the same on SQLite and PostgreSQL.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PostgresSql } from '../../src/db/postgres-sql.js';
import { LogsRepository, type NewLogRecord } from '../../src/repositories/logs-repository.js';
import { newRecord, NODE_ID } from '../support/memory-db.js';
import { postgresReachable, testDatabase } from '../support/postgres.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';
import { CASES, TEXTS } from '../support/text-cases.js';
import { waitFor } from '../support/test-server.js';

const OTHER_NODE = '0a1b2c3d-0000-4000-8000-000000000002';
const messages = (records: { message: string }[]) => records.map((r) => r.message);

describe.each(storeKinds)('log store on $name', (kind) => {
  let store: StoreUnderTest;
  let logs: LogsRepository;
  // One database for the suite (making one takes seconds on PostgreSQL), emptied before each test.
  beforeAll(async () => { store = await kind.open(); });
  afterAll(() => store.close());
  beforeEach(async () => {
    await store.sql.run('DELETE FROM log_records');
    if (kind.name === 'postgres') await store.sql.run('DELETE FROM log_search_blocks');
    logs = await LogsRepository.open(store.sql);
  });

  it('stores each record once: a batch sent again, overlapping, or with a record twice adds only the new ones, in order', async () => {
    const first = await logs.insertNew([newRecord(0), newRecord(1), newRecord(2)]);
    expect(first.map((r) => r.message)).toEqual(['line 0', 'line 1', 'line 2']);
    expect(first.map((r) => r.id)).toEqual([...first.map((r) => r.id)].sort((a, b) => a - b));
    const again = await logs.insertNew([newRecord(1), newRecord(2), newRecord(3), newRecord(3), newRecord(4)]);
    expect(messages(again)).toEqual(['line 3', 'line 4']);
    expect(again[0]!.id).toBeGreaterThan(first[2]!.id);
    expect(messages((await logs.search({ limit: 10, afterId: 0 })).records)).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
  });

  it('never merges records without an offset, and keeps the same offset apart per node and stream', async () => {
    const noOffset = (i: number) => newRecord(i, `system ${i}`, { source: 'system', stream: 'system:journal', offset: null, demo: null, token: null });
    const stored = await logs.insertNew([noOffset(0), noOffset(1), newRecord(0), newRecord(0, 'other node', { nodeId: OTHER_NODE }), newRecord(0, 'other stream', { stream: 'demo:t:1' })]);
    expect(messages(stored)).toEqual(['system 0', 'system 1', 'line 0', 'other node', 'other stream']);
    expect(messages(await logs.insertNew([noOffset(0)]))).toEqual(['system 0']);
  });

  it('returns what it stored as the API shows it, and counts the bytes as a recount does', async () => {
    const [record] = await logs.insertNew([newRecord(7, 'with fields', { level: 4, fields: { camera: 'usb-0', fps: 30 } })]);
    expect(record).toMatchObject({ node_id: NODE_ID, source: 'demo', demo: 'face-tracker', token: 't', level: 'ERROR', message: 'with fields', fields: { camera: 'usb-0', fps: 30 } });
    expect((await logs.search({ limit: 1 })).records).toEqual([record]);
    const counted = logs.storedBytes;
    expect(counted).toBeGreaterThan(0);
    expect((await LogsRepository.open(store.sql)).storedBytes).toBe(counted);
  });

  it('filters by node, demo, source, level, time and structured fields (text, numbers, true/false/null by name)', async () => {
    const at = (i: number, extra: Partial<NewLogRecord>) => newRecord(i, `r${i}`, extra);
    await logs.insertNew([
      at(0, { level: 1 }), at(1, { level: 3, nodeId: OTHER_NODE }), at(2, { demo: 'kiosk' }), at(3, { fields: { camera: 'usb-0', fps: 30, ok: true, gone: null } }),
      at(4, { fields: { camera: 'usb-1', fps: 30.5, ok: false } }), at(5, { fields: { camera: '30' } }),
    ]);
    const found = async (query: Parameters<LogsRepository['search']>[0]) => messages((await logs.search(query)).records).reverse();
    expect(await found({ limit: 10, nodeId: OTHER_NODE })).toEqual(['r1']);
    expect(await found({ limit: 10, demo: 'kiosk' })).toEqual(['r2']);
    expect(await found({ limit: 10, minLevel: 3 })).toEqual(['r1']);
    expect(await found({ limit: 10, since: newRecord(2).ts, until: newRecord(4).ts })).toEqual(['r2', 'r3']);
    expect(await found({ limit: 10, fields: { camera: 'usb-0' } })).toEqual(['r3']);
    expect(await found({ limit: 10, fields: { fps: '30' } })).toEqual(['r3']);
    expect(await found({ limit: 10, fields: { fps: '30.50' } })).toEqual(['r4']);
    expect(await found({ limit: 10, fields: { camera: '30' } })).toEqual(['r5']);
    expect(await found({ limit: 10, fields: { ok: 'true' } })).toEqual(['r3']);
    expect(await found({ limit: 10, fields: { ok: 'false' } })).toEqual(['r4']);
    expect(await found({ limit: 10, fields: { gone: 'null' } })).toEqual(['r3']);
    expect(await found({ limit: 10, fields: { camera: 'usb-0', fps: '30.5' } })).toEqual([]);
  });

  it('pages newest first by (ts, id) and follows after an id, oldest first', async () => {
    const sameTime = newRecord(0).ts;
    const stored = await logs.insertNew(Array.from({ length: 5 }, (_, i) => newRecord(i, `p${i}`, { ts: sameTime + (i < 3 ? 0 : i) })));
    const first = await logs.search({ limit: 2 });
    expect([messages(first.records), first.more]).toEqual([['p4', 'p3'], true]);
    const last = first.records.at(-1)!;
    const second = await logs.search({ limit: 2, before: { ts: last.ts, id: last.id } });
    expect([messages(second.records), second.more]).toEqual([['p2', 'p1'], true]);
    const after = await logs.search({ limit: 10, afterId: stored[1]!.id });
    expect([messages(after.records), after.more]).toEqual([['p2', 'p3', 'p4'], false]);
    expect(await logs.maxId()).toBe(stored[4]!.id);
  });

  it('deletes the oldest records by age and by bytes, keeping the newest, and counts what went', async () => {
    const stored = await logs.insertNew(Array.from({ length: 6 }, (_, i) => newRecord(i)));
    const byAge = await logs.deleteOlderThan(newRecord(2).ts, 100);
    expect(byAge.ids).toEqual(stored.slice(0, 2).map((r) => r.id));
    const everything = await logs.deleteOldestBytes(Number.MAX_SAFE_INTEGER);
    expect(everything.ids).toEqual(stored.slice(2, 5).map((r) => r.id));
    expect(messages((await logs.search({ limit: 10 })).records)).toEqual(['line 5']);
    expect(logs.storedBytes).toBe((await LogsRepository.open(store.sql)).storedBytes);
  });

  it.runIf(kind.name === 'postgres')('drops the search blocks of deleted records with them, and still finds the records left', async () => {
    for (let i = 0; i < 6; i++) await logs.insertNew([newRecord(i, `batch ${i} word${i}`)]);
    await logs.deleteOldestBytes(Number.MAX_SAFE_INTEGER);
    expect((await store.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM log_search_blocks'))!.n).toBe(1);
    expect(messages((await logs.search({ q: 'word5', limit: 10 })).records)).toEqual(['batch 5 word5']);
    expect(messages((await logs.search({ q: 'word4', limit: 10 })).records)).toEqual([]);
  });

  it.runIf(kind.name === 'postgres')('drops the blocks of records deleted by age behind a line whose clock runs ahead', async () => {
    await logs.insertNew([newRecord(0, 'from the future', { ts: newRecord(0).ts + 86_400_000, nodeId: OTHER_NODE })]);
    for (let i = 1; i < 6; i++) await logs.insertNew([newRecord(i, `batch ${i}`)]);
    await logs.deleteOlderThan(newRecord(5).ts, 100);
    expect(messages((await logs.search({ limit: 10 })).records)).toEqual(['from the future', 'batch 5']);
    expect((await store.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM log_search_blocks'))!.n).toBe(2);
    expect(messages((await logs.search({ q: 'future', limit: 10 })).records)).toEqual(['from the future']);
  });

  it('finds any line of a batch too big for one search block, first, middle and last', async () => {
    // 400 lines of 300 distinct words: PostgreSQL cuts the batch into several blocks (search/search-blocks.ts).
    const line = (i: number) => Array.from({ length: 300 }, (_, w) => `w${i}x${w}yz`).join(' ');
    await logs.insertNew(Array.from({ length: 400 }, (_, i) => newRecord(i, line(i))));
    for (const i of [0, 1, 217, 399]) {
      expect(messages((await logs.search({ q: `w${i}x299yz`, limit: 10 })).records)).toEqual([line(i)]);
      expect(messages((await logs.search({ q: `"w${i}x0yz w${i}x1"`, limit: 10 })).records)).toEqual([line(i)]);
    }
    if (kind.name === 'postgres') expect((await store.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM log_search_blocks'))!.n).toBeGreaterThan(1);
  });

  it.runIf(kind.name === 'postgres')('finds the same when the words are in blocks too many or too wide to narrow by', async () => {
    const stored = await logs.insertNew(Array.from({ length: 30 }, (_, i) => newRecord(i, i % 3 ? `plain ${i}` : `common ${i}`)));
    const expected = stored.filter((r) => r.message.startsWith('common')).map((r) => r.message).reverse();
    const found = async () => messages((await logs.search({ q: 'common', limit: 100 })).records);
    const page = async () => messages((await logs.search({ q: 'common', limit: 3, before: { ts: stored[20]!.ts, id: stored[20]!.id } })).records);
    expect(await found()).toEqual(expected);
    await store.sql.run("INSERT INTO log_search_blocks (first_id, last_id, words) VALUES (1, 1000000000, 'common')");
    expect(await found()).toEqual(expected);
    expect(await page()).toEqual(['common 18', 'common 15', 'common 12']);
    await store.sql.run("INSERT INTO log_search_blocks (first_id, last_id, words) SELECT i, i, 'common' FROM generate_series(1, 10001) AS i");
    expect(await found()).toEqual(expected);
    expect(await page()).toEqual(['common 18', 'common 15', 'common 12']);
  });

  it('finds a line among lines another batch stored at the same time (their blocks share id ranges)', async () => {
    const other = (i: number) => newRecord(i, `other ${i}`, { nodeId: OTHER_NODE });
    await Promise.all([
      logs.insertNew(Array.from({ length: 50 }, (_, i) => newRecord(i, i === 25 ? 'the rare needle' : `plain ${i}`))),
      logs.insertNew(Array.from({ length: 50 }, (_, i) => other(i))),
    ]);
    expect(messages((await logs.search({ q: 'needle', limit: 10 })).records)).toEqual(['the rare needle']);
    expect((await logs.search({ q: 'other', limit: 100 })).records).toHaveLength(50);
  });

  it('keeps text it cannot hold as it is on SQLite, or as U+FFFD on PostgreSQL, never refusing the batch', async () => {
    const [record] = await logs.insertNew([newRecord(0, 'nul \u0000 and lone \ud800 surrogate')]);
    const [found] = (await logs.search({ limit: 1, q: '"lone surrogate" nul' })).records;
    if (kind.name === 'postgres') {
      expect(found!.message).toBe('nul \uFFFD and lone \uFFFD surrogate');
      expect(record!.message).toBe(found!.message);
    } else {
      expect(found!.message.replace(/\uFFFD+/, '\uFFFD')).toBe('nul \u0000 and lone \uFFFD surrogate');
    }
  });

  it('keeps a NUL or a lone surrogate in a structured field from failing field filters', async () => {
    await logs.insertNew([
      newRecord(0, 'odd', { fields: { camera: 'usb\u00000', 'k\u0000': 'lone \ud800', nested: { v: ['\u0000'] } } }),
      newRecord(1, 'plain', { fields: { camera: 'usb-0' } }),
    ]);
    expect(messages((await logs.search({ limit: 10, fields: { camera: 'usb-0' } })).records)).toEqual(['plain']);
    const [odd] = (await logs.search({ limit: 10, fields: { camera: kind.name === 'postgres' ? 'usb\uFFFD0' : 'usb\u00000' } })).records;
    expect(odd?.message).toBe('odd');
    if (kind.name === 'postgres') expect(odd!.fields).toEqual({ camera: 'usb\uFFFD0', 'k\uFFFD': 'lone \uFFFD', nested: { v: ['\uFFFD'] } });
  });
});

describe.each(storeKinds)('q in the log store on $name', (kind) => {
  let store: StoreUnderTest;
  let logs: LogsRepository;
  beforeAll(async () => {
    store = await kind.open();
    logs = await LogsRepository.open(store.sql);
    await logs.insertNew(TEXTS.map((t, i) => newRecord(i, t)));
  });
  afterAll(() => store.close());

  it.each(CASES)('%s', async (q, expected) => {
    expect(messages((await logs.search({ q, limit: 100 })).records).reverse()).toEqual(expected);
  });

  it('finds a word by prefix in a very long word, and a phrase deep in a long line', async () => {
    const long = `${'x'.repeat(3000)} tail`;
    const deep = `${Array.from({ length: 2000 }, (_, i) => `w${i}`).join(' ')} needle here`;
    await logs.insertNew([newRecord(100, long), newRecord(101, deep)]);
    expect(messages((await logs.search({ q: 'x'.repeat(200), limit: 10 })).records)).toEqual([long]);
    expect(messages((await logs.search({ q: '"needle her"', limit: 10 })).records)).toEqual([deep]);
    expect(messages((await logs.search({ q: '"w1999 needle"', limit: 10 })).records)).toEqual([deep]);
  });

  it('finds a phrase past the 16,383rd word of a line (where PostgreSQL positions would stop)', async () => {
    const past = `${Array.from({ length: 17_000 }, (_, i) => `p${i}`).join(' ')} far phrase`;
    await logs.insertNew([newRecord(102, past)]);
    expect(messages((await logs.search({ q: '"p16999 far phr"', limit: 10 })).records)).toEqual([past]);
    expect(messages((await logs.search({ q: '"far p16999"', limit: 10 })).records)).toEqual([]);
  });

  it('tells words PostgreSQL reads differently apart as the matcher does (x² is not x)', async () => {
    await logs.insertNew([newRecord(200, 'value x² rises'), newRecord(201, 'xylophone and ½ note')]);
    expect(messages((await logs.search({ q: 'x²', limit: 10 })).records)).toEqual(['value x² rises']);
    expect(messages((await logs.search({ q: '½', limit: 10 })).records)).toEqual(['xylophone and ½ note']);
    expect(messages((await logs.search({ q: '"and ½ note"', limit: 10 })).records)).toEqual(['xylophone and ½ note']);
  });
});

// A big log table makes the recount, retention's deletes and VACUUM run longer than the statement
// bound. Here a lock another session holds past the (tiny) bound plays the big table.
describe.skipIf(!(await postgresReachable()))('log maintenance outlasting the statement timeout (PostgreSQL)', () => {
  const timeouts = { statementMs: 200, idleInTransactionMs: 60_000, queryMs: 5000 };
  let database: { url: string; drop: () => Promise<void> };
  let sql: PostgresSql;
  let other: pg.Client;
  beforeAll(async () => {
    database = await testDatabase();
    sql = new PostgresSql({ url: database.url, poolSize: 2, timeouts });
    other = new pg.Client({ connectionString: database.url });
    await other.connect();
  });
  afterAll(async () => {
    await other?.end();
    await sql?.close();
    await database?.drop();
  });
  afterEach(() => other.query('ROLLBACK'));

  /** Runs work while `other` locks log_records, released three statement bounds after work waits on it. */
  async function behindLock<T>(work: () => Promise<T>): Promise<T | Error> {
    await other.query('BEGIN');
    await other.query('LOCK TABLE log_records IN ACCESS EXCLUSIVE MODE');
    const outcome = work().catch((err: Error) => err);
    await waitFor(async () => {
      await other.query('SELECT pg_stat_clear_snapshot()');
      return (await other.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rowCount;
    }, 10_000, 'the maintenance statement waits on the lock');
    await new Promise((resolve) => setTimeout(resolve, 3 * timeouts.statementMs));
    await other.query('ROLLBACK');
    return outcome;
  }

  it('a replica starts (recount), retention counts, deletes and vacuums: none fails with 57014', async () => {
    const writer = await LogsRepository.open(sql);
    await writer.insertNew([newRecord(0), newRecord(1), newRecord(2)]);
    const stored = writer.storedBytes;
    const starting = await behindLock(() => LogsRepository.open(sql));
    expect(starting).toBeInstanceOf(LogsRepository);
    expect((starting as LogsRepository).storedBytes).toBe(stored);
    expect(await behindLock(() => writer.refreshStoredBytes())).toBe(true);
    const deleted = await behindLock(() => writer.deleteOlderThan(Date.UTC(2026, 10, 24, 10, 0, 0, 1), 10));
    expect(deleted).toMatchObject({ ids: [expect.any(Number)] });
    expect(await behindLock(() => writer.deleteOldestBytes(1))).toMatchObject({ ids: [expect.any(Number)] });
    expect(await behindLock(() => writer.vacuum())).toBeUndefined();
    // Other statements keep their bound.
    expect(await behindLock(() => sql.get('SELECT COUNT(*) AS n FROM log_records'))).toMatchObject({ code: '57014' });
  });
});
