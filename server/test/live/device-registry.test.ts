// The device state machine driven by its own timer under a fake clock: new -> up -> late -> down
// -> up, each change timestamped at the moment it was due and emitted at once; pings batched.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DeviceStatusLiveMessage } from '@dvic/protocol';
import type { Db } from '../../src/db/database.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { DeviceRegistry } from '../../src/live/device-registry.js';
import { uptimePercent } from '../../src/live/device-status.js';
import { DevicesRepository } from '../../src/repositories/devices-repository.js';
import { writeNow } from '../../src/services/deferred-writes.js';
import { healthchecksPing, keepalivePing } from '../../src/services/device-pings.js';
import { sha256Hex } from '../../src/services/tokens.js';
import { memoryDb } from '../support/memory-db.js';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const OPTIONS = { flushMs: 200, tickMs: 250, seenMs: 1000, keepPings: 5, maxPending: 1000, maxPendingBytes: 1024 * 1024, maxPendingTransitions: 100 };
let db: Db;
let sql: SqliteSql;
let registry: DeviceRegistry;
let changes: DeviceStatusLiveMessage['data'][];

beforeEach(async () => {
  vi.useFakeTimers({ now: T0 });
  db = memoryDb();
  sql = new SqliteSql(db);
  registry = await new DeviceRegistry(new DevicesRepository(sql), writeNow, OPTIONS).load();
  changes = [];
  registry.on('status', (c) => changes.push(c));
  registry.start();
});
afterEach(async () => {
  await registry.stop();
  db.close();
  vi.useRealTimers();
});

const ok = () => keepalivePing(undefined, null);

describe('device state machine (fake clock)', () => {
  it('new -> up -> late -> down -> up, each change at the moment it was due', async () => {
    const { device, token } = await registry.create({ name: 'esp', periodS: 60, graceS: 30 });
    const hash = sha256Hex(token);
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(changes).toEqual([]); // never seen: stays new
    expect(registry.ping(hash, ok())).toBe(true);
    const seenAt = Date.now();
    await vi.advanceTimersByTimeAsync(59_000);
    expect(changes.map((c) => c.status)).toEqual(['up']);
    await vi.advanceTimersByTimeAsync(1_250);
    expect(changes.map((c) => c.status)).toEqual(['up', 'late']);
    expect(changes[1]!.since).toBe(seenAt + 60_000);
    await vi.advanceTimersByTimeAsync(29_000);
    expect(changes).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(changes.map((c) => [c.status, c.since - seenAt])).toEqual([['up', 0], ['late', 60_000], ['down', 90_000]]);
    expect(changes[2]!.reason).toMatch(/no ping for 90 s/);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(changes).toHaveLength(3); // down stays down
    registry.ping(hash, ok());
    expect(changes.map((c) => c.status)).toEqual(['up', 'late', 'down', 'up']);
    await vi.advanceTimersByTimeAsync(OPTIONS.flushMs);
    expect((await registry.detail(device.id)).transitions.map((t) => `${t.from}->${t.to}`)).toEqual(['down->up', 'late->down', 'up->late', 'new->up']);
  });

  it('a failure ping is down at once; a ping resets the window; a paused device waits, a ping resumes it', async () => {
    const { token, device } = await registry.create({ name: 'cron', periodS: 10, graceS: 5 });
    const hash = sha256Hex(token);
    registry.ping(hash, healthchecksPing('fail', 'boom'));
    expect(changes.map((c) => c.status)).toEqual(['down']);
    registry.ping(hash, ok());
    await vi.advanceTimersByTimeAsync(9_000);
    registry.ping(hash, ok());
    await vi.advanceTimersByTimeAsync(9_000);
    expect(changes.map((c) => c.status)).toEqual(['down', 'up']); // never late: each ping reset the window
    await registry.pause(device.id);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(changes.map((c) => c.status)).toEqual(['down', 'up', 'paused']);
    registry.ping(hash, ok());
    expect(changes.at(-1)!.status).toBe('up');
    registry.ping(hash, healthchecksPing('start', undefined));
    registry.ping(hash, healthchecksPing('log', 'note'));
    expect(changes.at(-1)!.status).toBe('up'); // start and log change nothing
  });

  it('batches pings: nothing is written until the flush, then every one; history capped, count kept', async () => {
    const { token, device } = await registry.create({ name: 'busy' });
    const hash = sha256Hex(token);
    for (let i = 0; i < 12; i++) registry.ping(hash, ok());
    const stored = () => (db.prepare('SELECT COUNT(*) AS n FROM device_pings').get() as { n: number }).n;
    expect(stored()).toBe(0);
    await vi.advanceTimersByTimeAsync(OPTIONS.flushMs);
    expect(stored()).toBe(12);
    await vi.advanceTimersByTimeAsync(60_000); // trim
    expect(stored()).toBe(OPTIONS.keepPings);
    expect((await registry.detail(device.id)).ping_count).toBe(12);
    expect(registry.ping(sha256Hex('dvk_other'), ok())).toBe(false);
  });

  it('on a full disk keeps the pings in memory and writes every one once the disk has room', async () => {
    await registry.stop();
    const store = new DevicesRepository(sql);
    const reported: string[] = [];
    const scheduler = { ...writeNow, report: (_err: unknown, what: string) => void reported.push(what) };
    const full = await new DeviceRegistry(store, scheduler, OPTIONS).load();
    full.start();
    const { token } = await full.create({ name: 'esp' });
    const write = store.writeBatch.bind(store);
    let refuse = true;
    store.writeBatch = async (...args) => {
      if (refuse) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      await write(...args);
    };
    for (let i = 0; i < 30; i++) full.ping(sha256Hex(token), ok());
    await vi.advanceTimersByTimeAsync(OPTIONS.flushMs * 3);
    expect(reported[0]).toBe('writing device pings');
    expect((db.prepare('SELECT COUNT(*) AS n FROM device_pings').get() as { n: number }).n).toBe(0);
    refuse = false;
    await vi.advanceTimersByTimeAsync(OPTIONS.flushMs);
    expect((db.prepare('SELECT COUNT(*) AS n FROM device_pings').get() as { n: number }).n).toBe(30);
    await full.stop();
  });

  it('on a full disk the unwritten queue stays under its byte cap, the oldest given up, and status changes stay bounded', async () => {
    await registry.stop();
    const store = new DevicesRepository(sql);
    const full = await new DeviceRegistry(store, { ...writeNow, report: () => undefined }, OPTIONS).load();
    full.start();
    const { token } = await full.create({ name: 'flood' });
    store.writeBatch = async () => { throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }); };
    const hash = sha256Hex(token);
    // 500 pings of 100 kB bodies (what /ping accepts): 10 kB of each kept, and at most 1 MB queued in all.
    for (let i = 0; i < 500; i++) {
      full.ping(hash, healthchecksPing(i % 2 ? 'fail' : undefined, String(i % 10).repeat(100 * 1024)));
      await vi.advanceTimersByTimeAsync(1);
    }
    await vi.advanceTimersByTimeAsync(OPTIONS.flushMs * 2);
    expect(full.pendingPingBytes).toBeLessThanOrEqual(OPTIONS.maxPendingBytes);
    expect(full.pendingPingBytes).toBeGreaterThan(OPTIONS.maxPendingBytes / 2);
    expect(full.dropped).toBeGreaterThan(400);
    expect(full.pendingCounts.transitions).toBe(OPTIONS.maxPendingTransitions);
    expect(full.droppedTransitions).toBe(500 - OPTIONS.maxPendingTransitions);
    await full.stop();
  });

  it('keeps the first 10 kB of a big ping body', async () => {
    const { token, device } = await registry.create({ name: 'big' });
    registry.ping(sha256Hex(token), healthchecksPing(undefined, 'a'.repeat(100 * 1024)));
    await vi.advanceTimersByTimeAsync(OPTIONS.flushMs);
    expect((await registry.detail(device.id)).last_body).toHaveLength(10 * 1024);
    expect((await registry.pingHistory(device.id, 1))[0]!.body).toHaveLength(10 * 1024);
  });

  it('keeps state across a restart: a device seen before is watched again from its last ping', async () => {
    const { token, device } = await registry.create({ name: 'esp', periodS: 5, graceS: 5 });
    registry.ping(sha256Hex(token), ok());
    await registry.stop();
    const again = await new DeviceRegistry(new DevicesRepository(sql), writeNow, OPTIONS).load();
    const seen: string[] = [];
    again.on('status', (c) => seen.push(c.status));
    again.start();
    await vi.advanceTimersByTimeAsync(11_000);
    expect(seen).toEqual(['late', 'down']);
    expect((await again.detail(device.id)).status).toBe('down');
    await again.stop();
  });
});

describe('two replicas on one database: the device pings A, B leads (fake clock)', () => {
  /** B as a replica leading the lab: it judges late and down; A takes the pings. Events go between them as the live fan-out carries them. */
  async function leaderBeside(a: DeviceRegistry) {
    const b = await new DeviceRegistry(new DevicesRepository(sql), writeNow, OPTIONS).load();
    const onB: string[] = [];
    b.on('status', (c) => onB.push(c.status));
    // What a registry announces while applying the other's event is not sent back (LiveHub.applyingRemote).
    let applying = false;
    const carry = (apply: () => void) => {
      if (applying) return;
      applying = true;
      try { apply(); } finally { applying = false; }
    };
    a.on('status', (data) => carry(() => b.applyRemote({ type: 'device.status', data })));
    a.on('seen', (devices) => carry(() => b.applyRemote({ type: 'devices.seen', data: { devices } })));
    b.on('status', (data) => carry(() => a.applyRemote({ type: 'device.status', data })));
    a.stopTicks();
    b.start();
    return { b, onB };
  }
  const row = (id: string) => db.prepare('SELECT status, last_seen, last_body, ping_count, window_from FROM devices WHERE id = ?').get(id);

  it('a device that keeps pinging A is never marked late by B, whatever window B loaded', async () => {
    const { token, device } = await registry.create({ name: 'esp', periodS: 60, graceS: 30 });
    const hash = sha256Hex(token);
    registry.ping(hash, ok());
    await vi.advanceTimersByTimeAsync(OPTIONS.flushMs);
    // B starts now: the window it reads is this first ping's.
    const { b, onB } = await leaderBeside(registry);
    try {
      for (let i = 0; i < 12; i++) {
        await vi.advanceTimersByTimeAsync(50_000);
        registry.ping(hash, ok());
      }
      const lastPing = Date.now();
      await vi.advanceTimersByTimeAsync(5_000);
      expect(onB).toEqual([]);
      expect(changes.map((c) => c.status)).toEqual(['up']);
      expect((await b.detail(device.id)).status).toBe('up');
      expect(row(device.id)).toMatchObject({ status: 'up', ping_count: 13, last_seen: lastPing, window_from: lastPing });
    } finally {
      await b.stop();
    }
  });

  it('each replica writes only what it owns: B the status it judged, A the ping fields (B never writes its stale copy over them)', async () => {
    const { token, device } = await registry.create({ name: 'esp', periodS: 60, graceS: 30 });
    const hash = sha256Hex(token);
    registry.ping(hash, healthchecksPing(undefined, 'firmware v1'));
    await vi.advanceTimersByTimeAsync(OPTIONS.flushMs);
    const { b, onB } = await leaderBeside(registry);
    try {
      await vi.advanceTimersByTimeAsync(10_000);
      registry.ping(hash, healthchecksPing(undefined, 'firmware v2'));
      const lastPing = Date.now();
      // No ping after that: B judges late, then down, from A's last ping.
      await vi.advanceTimersByTimeAsync(95_000);
      expect(onB).toEqual(['late', 'down']);
      expect(changes.map((c) => c.status)).toEqual(['up', 'late', 'down']);
      await registry.flush();
      await b.flush();
      expect(row(device.id)).toMatchObject({ status: 'down', last_body: 'firmware v2', ping_count: 2, last_seen: lastPing, window_from: lastPing });
      expect((await b.detail(device.id)).transitions.map((t) => [t.to, t.at - lastPing])).toEqual([['down', 90_000], ['late', 60_000], ['up', expect.any(Number)]]);
    } finally {
      await b.stop();
    }
  });
});

describe('uptime %', () => {
  it('counts up and late as up, down as down, new and paused not at all', async () => {
    const h = 3_600_000;
    expect(uptimePercent('new', [], 0, 10 * h)).toBeNull();
    expect(uptimePercent('new', [{ at: 2 * h, to: 'up' }, { at: 6 * h, to: 'down' }, { at: 8 * h, to: 'up' }], 0, 10 * h)).toBe(75);
    expect(uptimePercent('up', [{ at: 1 * h, to: 'paused' }, { at: 9 * h, to: 'up' }], 0, 10 * h)).toBe(100);
    expect(uptimePercent('down', [{ at: -h, to: 'down' }, { at: 5 * h, to: 'late' }], 0, 10 * h)).toBe(50);
  });
});

describe('a ping whose token this registry does not know', () => {
  /** A device made through another registry on the same database after this one loaded (as another replica would). */
  async function madeElsewhere(): Promise<string> {
    const elsewhere = await new DeviceRegistry(new DevicesRepository(sql), writeNow, OPTIONS).load();
    const { token } = await elsewhere.create({ name: 'made-elsewhere', periodS: 60, graceS: 30 });
    await elsewhere.stop();
    return sha256Hex(token);
  }

  it('a single server refuses it without reading the database (it knows every token it made)', async () => {
    const hash = await madeElsewhere();
    expect(await registry.accept(hash, ok())).toBe(false);
  });

  it('a replica on a shared database looks it up there and takes the ping', async () => {
    const replica = await new DeviceRegistry(new DevicesRepository(sql), writeNow, OPTIONS).load({ sharedDatabase: true });
    try {
      const hash = await madeElsewhere();
      expect(await replica.accept(hash, ok())).toBe(true);
      expect(await replica.accept(sha256Hex('random-token'), ok())).toBe(false);
    } finally {
      await replica.stop();
    }
  });
});
