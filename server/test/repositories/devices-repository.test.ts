import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PostgresSql } from '../../src/db/postgres-sql.js';
import { DevicesRepository, type DeviceRecord, type NewPing } from '../../src/repositories/devices-repository.js';
import { postgresReachable, testDatabase } from '../support/postgres.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';
import { waitFor } from '../support/test-server.js';

const device = (id: string, name: string, extra: Partial<DeviceRecord> = {}): DeviceRecord => ({
  id, name, labels: { room: 'hall' }, nodeId: null, periodS: 60, graceS: 30, tokenHash: `hash-${id}`, status: 'new', statusSince: 1000,
  lastSeen: null, lastStatus: null, lastMessage: null, lastBody: null, firmware: null, demo: null, numbers: {}, runStartedAt: null,
  windowFrom: null, pingCount: 0, createdAt: 1000, ...extra,
});
const ping = (deviceId: string, at: number, extra: Partial<NewPing> = {}): NewPing => ({
  device_id: deviceId, at, kind: 'ok', source: 'keepalive', status: null, message: null, body: null, numbers: {}, logs: [], duration_ms: null, ...extra,
});

describe.each(storeKinds)('devices repository on $name', (kind) => {
  let store: StoreUnderTest;
  let devices: DevicesRepository;
  beforeEach(async () => {
    store = await kind.open();
    devices = new DevicesRepository(store.sql);
  });
  afterEach(() => store.close());

  it('inserts devices, changes their settings and token, and removes them with their pings and history', async () => {
    await devices.insert(device('d2', 'zeta'));
    await devices.insert(device('d1', 'alpha'));
    expect(await devices.nameTaken('alpha')).toBe(true);
    expect(await devices.nameTaken('alpha', 'd1')).toBe(false);
    await expect(devices.insert(device('d3', 'alpha'))).rejects.toThrow();
    await devices.updateSettings(device('d1', 'beta', { labels: { room: 'lab' }, periodS: 5, graceS: 0 }));
    await devices.setTokenHash('d1', 'hash-new');
    expect((await devices.all()).map((d) => d.name)).toEqual(['beta', 'zeta']);
    expect(await devices.get('d1')).toEqual(device('d1', 'beta', { labels: { room: 'lab' }, periodS: 5, graceS: 0, tokenHash: 'hash-new' }));
    await devices.writeBatch([ping('d1', 2000)], {}, [{ device_id: 'd1', at: 2000, from: 'new', to: 'up', reason: 'keepalive received' }]);
    await devices.remove('d1');
    expect(await devices.get('d1')).toBeUndefined();
    expect([await devices.countPings(), await devices.recentTransitions('d1', 10)]).toEqual([0, []]);
  });

  it('writes a batch of pings, states and status changes, and reads pings back newest first, page by page', async () => {
    await devices.insert(device('d1', 'esp'));
    const pings = Array.from({ length: 30 }, (_, i) => ping('d1', 2000 + i, {
      message: `m${i}`, numbers: { t: i }, logs: i === 29 ? [{ level: 'INFO', message: 'hello', at: 5 }] : [], kind: i % 10 ? 'ok' : 'fail', duration_ms: i,
    }));
    const state = device('d1', 'esp', {
      status: 'down', statusSince: 2029, lastSeen: 2029, lastStatus: 'fail', lastMessage: 'm29', lastBody: '{"x":1}', firmware: '1.2', demo: 'kiosk',
      numbers: { t: 29 }, runStartedAt: null, windowFrom: 2029, pingCount: 30,
    });
    await devices.writeBatch(pings, { pinged: [{ device: state, newPings: 30 }], judged: [state] }, [{ device_id: 'd1', at: 2020, from: 'new', to: 'down', reason: 'failure reported' }]);
    expect(await devices.get('d1')).toEqual(state);
    expect(await devices.countPings()).toBe(30);
    const first = await devices.pings('d1', 10);
    expect(first.map((p) => p.message)).toEqual(Array.from({ length: 10 }, (_, i) => `m${29 - i}`));
    expect(first[0]).toMatchObject({ device_id: 'd1', at: 2029, numbers: { t: 29 }, logs: [{ level: 'INFO', message: 'hello', at: 5 }], duration_ms: 29 });
    expect(first[1]!.logs).toEqual([]);
    const next = await devices.pings('d1', 10, first.at(-1)!.id);
    expect(next[0]!.message).toBe('m19');
  });

  it('writes only the columns each replica owns, the newer of two writes winning: ping fields and count from the pinged one, status from the judging one', async () => {
    await devices.insert(device('d1', 'esp'));
    const pingedHere = device('d1', 'esp', { lastSeen: 5000, lastStatus: 'ok', lastBody: 'v2', windowFrom: 5000, pingCount: 99, status: 'up', statusSince: 1000 });
    await devices.writeBatch([], { pinged: [{ device: pingedHere, newPings: 2 }] }, []);
    // The leader's copy: an older sighting, a status it judged; the other replica's count is not its to write.
    const judgedThere = device('d1', 'esp', { lastSeen: 1000, lastBody: 'v1', windowFrom: 1000, pingCount: 7, status: 'late', statusSince: 4000 });
    await devices.writeBatch([], { judged: [judgedThere] }, []);
    expect(await devices.get('d1')).toMatchObject({ status: 'late', statusSince: 4000, lastSeen: 5000, lastBody: 'v2', windowFrom: 5000, pingCount: 2 });
    // Writes that come late (older ping fields, an older status) leave the newer ones; counts add up.
    await devices.writeBatch([], { pinged: [{ device: judgedThere, newPings: 1 }], judged: [{ ...pingedHere, status: 'up', statusSince: 3000 }] }, []);
    expect(await devices.get('d1')).toMatchObject({ status: 'late', statusSince: 4000, lastSeen: 5000, lastBody: 'v2', windowFrom: 5000, pingCount: 3 });
  });

  it('writes nothing of a batch that fails', async () => {
    await devices.insert(device('d1', 'esp'));
    await expect(devices.writeBatch([ping('d1', 2000)], {}, [{ device_id: 'no-such-device', at: 2000, from: 'new', to: 'up', reason: 'x' }])).rejects.toThrow();
    expect(await devices.countPings()).toBe(0);
  });

  it('answers the status at a time and the changes since, and the latest changes newest first', async () => {
    await devices.insert(device('d1', 'esp'));
    const t = (at: number, from: DeviceRecord['status'], to: DeviceRecord['status']) => ({ device_id: 'd1', at, from, to, reason: `${from}->${to}` });
    await devices.writeBatch([], {}, [t(100, 'new', 'up'), t(200, 'up', 'late'), t(300, 'late', 'down'), t(400, 'down', 'up')]);
    expect(await devices.transitionsSince('d1', 250)).toEqual({
      before: 'late', changes: [{ at: 300, from: 'late', to: 'down', reason: 'late->down' }, { at: 400, from: 'down', to: 'up', reason: 'down->up' }],
    });
    expect(await devices.transitionsSince('d1', 50)).toMatchObject({ before: null, changes: { length: 4 } });
    expect((await devices.recentTransitions('d1', 2)).map((c) => c.to)).toEqual(['up', 'down']);
  });

  it('trims each device to its newest pings and drops old status changes', async () => {
    await devices.insert(device('d1', 'esp'));
    await devices.insert(device('d2', 'cron'));
    await devices.writeBatch([
      ...Array.from({ length: 8 }, (_, i) => ping('d1', 1000 + i, { message: `a${i}` })),
      ...Array.from({ length: 3 }, (_, i) => ping('d2', 1000 + i, { message: `b${i}` })),
    ], {}, [{ device_id: 'd1', at: 10, from: 'new', to: 'up', reason: 'old' }, { device_id: 'd1', at: 5000, from: 'up', to: 'late', reason: 'new' }]);
    await devices.trim(['d1', 'd2'], 5, 1000);
    expect((await devices.pings('d1', 100)).map((p) => p.message)).toEqual(['a7', 'a6', 'a5', 'a4', 'a3']);
    expect(await devices.pings('d2', 100)).toHaveLength(3);
    expect((await devices.recentTransitions('d1', 10)).map((c) => c.reason)).toEqual(['new']);
  });
});

describe.skipIf(!(await postgresReachable()))('two replicas flushing the same devices in other orders (PostgreSQL)', () => {
  let database: { url: string; drop: () => Promise<void> };
  let replicas: PostgresSql[] = [];
  let other: pg.Client;
  beforeEach(async () => {
    database = await testDatabase();
    replicas = [0, 1].map(() => new PostgresSql({ url: database.url, poolSize: 2 }));
    other = new pg.Client({ connectionString: database.url });
    await other.connect();
  });
  afterEach(async () => {
    await other.end();
    for (const sql of replicas) await sql.close();
    await database.drop();
  });

  /** Sessions waiting on a lock (pg_stat_activity is read once per transaction unless its snapshot is cleared: `other` is in one). */
  const waiting = async () => {
    await other.query('SELECT pg_stat_clear_snapshot()');
    return Number((await other.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0]!.n);
  };

  const pinged = (d: DeviceRecord) => ({ device: { ...d, lastSeen: 5000 }, newPings: 1 });
  const judged = (d: DeviceRecord) => ({ ...d, status: 'up' as const, statusSince: 5000 });
  const [d1, d2] = [device('d1', 'alpha'), device('d2', 'zeta')];
  // A is given d2 before d1, B d1 before d2: within one list, or across the pinged and judged lists.
  it.each([
    ['pinged in other orders', { pinged: [pinged(d2), pinged(d1)] }, { pinged: [pinged(d1), pinged(d2)] }],
    ['one pinged, the other judged', { pinged: [pinged(d2)], judged: [judged(d1)] }, { pinged: [pinged(d1)], judged: [judged(d2)] }],
  ])('both batches are written (%s): the rows are locked in one order, so neither deadlocks (40P01)', async (_, batchA, batchB) => {
    const [a, b] = replicas.map((sql) => new DevicesRepository(sql)) as [DevicesRepository, DevicesRepository];
    for (const d of [d1, d2]) await a.insert(d);
    // A third session holds d2: A queues on it first, B behind it. Locking in the order given, B
    // would hold d1 once A takes d2, each waiting on the other.
    await other.query('BEGIN');
    await other.query("SELECT id FROM devices WHERE id = 'd2' FOR UPDATE");
    const flushA = a.writeBatch([], batchA, []).then(() => 'written', (err: Error) => err.message);
    await waitFor(async () => (await waiting()) === 1, 10_000, 'A waits on d2');
    const flushB = b.writeBatch([], batchB, []).then(() => 'written', (err: Error) => err.message);
    await waitFor(async () => (await waiting()) === 2, 10_000, 'B waits too');
    await other.query('ROLLBACK');
    expect(await Promise.all([flushA, flushB])).toEqual(['written', 'written']);
    const pings = batchA.pinged.length + batchB.pinged.length;
    expect((await a.all()).reduce((sum, d) => sum + d.pingCount, 0)).toBe(pings);
  });
});
