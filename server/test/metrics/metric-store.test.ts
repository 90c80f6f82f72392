import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChunkedMetricStore } from '../../src/metrics/chunked-metric-store.js';
import { defaultTiers, type TierPolicy } from '../../src/metrics/metric-store.js';
import { PostgresMetricStore } from '../../src/metrics/postgres-metric-store.js';
import { METRICS_FILE, SqliteMetricStore } from '../../src/metrics/sqlite-metric-store.js';
import { postgresReachable, testDatabase } from '../support/postgres.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The fake clock's start: a whole hour, so buckets are easy to reason about. */
const T0 = Date.UTC(2026, 0, 1);
const SOURCE = 'node:n1';
const MIB = 1024 * 1024;

/**
 * Where one test's history lives: its own SQLite file, or its own PostgreSQL database. open()
 * again after close() is a restart. breakWrites() makes the storage refuse writes for real (the
 * open-chunk table renamed away from under the store), mendWrites() puts it back.
 */
interface Place {
  open(tiers?: TierPolicy[], budget?: number): Promise<ChunkedMetricStore>;
  breakWrites(): Promise<void>;
  mendWrites(): Promise<void>;
}

interface StoreKind {
  name: 'sqlite' | 'postgres';
  skip: boolean;
  place(): Promise<Place>;
}

/** What each test made, removed after it (stores closed first, so a database can be dropped). */
const cleanUps: (() => Promise<unknown>)[] = [];
const opened: ChunkedMetricStore[] = [];
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close().catch(() => undefined); // closed by the test already
  for (const cleanUp of cleanUps.splice(0).reverse()) await cleanUp();
});
const track = (store: ChunkedMetricStore) => (opened.push(store), store);

const sqlite: StoreKind = {
  name: 'sqlite',
  skip: false,
  async place() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-metrics-'));
    cleanUps.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, METRICS_FILE);
    const rename = (from: string, to: string) => {
      const other = new Database(file);
      try {
        other.exec(`ALTER TABLE ${from} RENAME TO ${to}`);
      } finally {
        other.close();
      }
    };
    return {
      open: async (tiers = defaultTiers(64 * MIB), budget = 64 * MIB) => track(new SqliteMetricStore(file, tiers, budget)),
      breakWrites: async () => rename('open_chunks', 'open_chunks_away'),
      mendWrites: async () => rename('open_chunks_away', 'open_chunks'),
    };
  },
};

// Under CI=true a PostgreSQL that does not answer fails the suite (postgresReachable throws).
const withPostgres = await postgresReachable();

const postgres: StoreKind = {
  name: 'postgres',
  skip: !withPostgres,
  async place() {
    const database = await testDatabase({ migrated: false });
    cleanUps.push(database.drop);
    const rename = async (from: string, to: string) => {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        await client.query(`ALTER TABLE ${from} RENAME TO ${to}`);
      } finally {
        await client.end();
      }
    };
    return {
      open: async (tiers = defaultTiers(64 * MIB), budget = 64 * MIB) => track(await PostgresMetricStore.open(database.url, tiers, budget)),
      breakWrites: () => rename('metric_open_chunks', 'metric_open_chunks_away'),
      mendWrites: () => rename('metric_open_chunks_away', 'metric_open_chunks'),
    };
  },
};

/** Lets the event loop turn, as it does between two messages in the server (a flush append() started runs). */
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Feeds `cpu.total_pct` (and a second series) every `everyMs` from `from` to `to`, value = f(t), flushing as the server does. */
async function feed(store: ChunkedMetricStore, from: number, to: number, everyMs: number, f: (t: number) => number): Promise<void> {
  let n = 0;
  for (let t = from; t < to; t += everyMs) {
    store.append(SOURCE, t, [['cpu.total_pct', f(t)], ['memory.used_bytes', 1_000_000 + (t % 7)]]);
    if (++n % 500 === 0) await store.flush();
  }
  await store.flush();
}

const cpu = (store: ChunkedMetricStore, from: number, to: number, now: number, step?: number) => store.query({ source: SOURCE, names: ['cpu.total_pct'], from, to, now, step });

describe.each([sqlite, postgres])('metric store on $name', (kind) => {
  // describe.skipIf per kind: the SQLite half always runs.
  const test = kind.skip ? it.skip : it;

  test('forgets a removed source: its series leave memory, storage and the tier sizes; others stay, also after a restart', async () => {
    const place = await kind.place();
    let store = await place.open();
    await feed(store, T0, T0 + 3 * HOUR, 5000, (t) => (t / 5000) % 100);
    for (let t = T0; t < T0 + 3 * HOUR; t += 5000) store.append('device:e1', t, [['temp_c', 21]]);
    await store.flush(true);
    const before = store.tierSizes().reduce((a, b) => a + b, 0);
    await store.removeSource(SOURCE);
    expect(store.sources()).toEqual(['device:e1']);
    expect(await store.seriesNames(SOURCE)).toEqual([]);
    expect((await store.query({ source: SOURCE, names: [], from: T0, to: T0 + 3 * HOUR, now: T0 + 3 * HOUR })).series).toEqual([]);
    expect(store.tierSizes().reduce((a, b) => a + b, 0)).toBeLessThan(before / 2);
    await store.close();
    store = await place.open();
    expect(await store.seriesNames(SOURCE)).toEqual([]);
    expect(await store.seriesNames('device:e1')).toEqual(['temp_c']);
    expect((await store.query({ source: 'device:e1', names: ['temp_c'], from: T0, to: T0 + HOUR, now: T0 + 3 * HOUR })).series[0]!.points.length).toBeGreaterThan(100);
  });

  test('a source removed while its flush is under way leaves nothing in storage, also after a restart', async () => {
    const place = await kind.place();
    let store = await place.open();
    await feed(store, T0, T0 + HOUR, 5000, () => 5); // written already
    for (let t = T0; t < T0 + HOUR; t += 5000) store.append('device:new', t, [['temp_c', 20]]); // no row yet
    const flushing = store.flush(true);
    await Promise.all([flushing, store.removeSource(SOURCE), store.removeSource('device:new')]);
    expect(await store.seriesNames(SOURCE)).toEqual([]);
    await store.close();
    store = await place.open();
    for (const source of [SOURCE, 'device:new']) {
      expect(await store.seriesNames(source)).toEqual([]);
      expect((await store.query({ source, names: [], from: T0, to: T0 + HOUR, now: T0 + HOUR })).series).toEqual([]);
    }
    expect(store.tierSizes().reduce((a, b) => a + b, 0)).toBe(0);
  });

  test('lets go of what a series idle past the raw tier holds in memory; its history still answers, once, after a restart', async () => {
    const place = await kind.place();
    let store = await place.open();
    await feed(store, T0, T0 + 2 * HOUR + 30 * MINUTE, 5000, () => 40); // then silent
    for (let t = T0; t < T0 + 51 * HOUR; t += MINUTE) store.append('device:e1', t, [['temp_c', 21]]);
    await store.flush(true);
    const busy = store.chunksInMemory();
    await store.enforceRetention(T0 + 49 * HOUR); // the node's series: silent for more than 46 h, not yet 48
    expect(store.chunksInMemory()).toBe(busy);
    await store.enforceRetention(T0 + 51 * HOUR);
    expect(store.chunksInMemory()).toBeLessThan(busy);
    const kept = store.chunksInMemory();
    const hours = async () => (await cpu(store, T0, T0 + 3 * HOUR, T0 + 51 * HOUR, HOUR)).series[0]!.points;
    expect(await hours()).toEqual([[T0, 40], [T0 + HOUR, 40], [T0 + 2 * HOUR, 40]]);
    await store.close();
    store = await place.open();
    expect(await hours()).toEqual([[T0, 40], [T0 + HOUR, 40], [T0 + 2 * HOUR, 40]]);
    expect(store.chunksInMemory()).toBeLessThanOrEqual(kept);
  });

  test('answers raw samples for short ranges and keeps them across a restart (reload shows the past)', async () => {
    const place = await kind.place();
    let store = await place.open();
    await feed(store, T0, T0 + HOUR, 5000, (t) => ((t - T0) / 5000) % 100);
    await store.close();
    store = await place.open();
    const answer = await cpu(store, T0 + 15 * MINUTE, T0 + 30 * MINUTE, T0 + HOUR);
    expect(answer.tier).toBe('raw');
    expect(answer.series).toHaveLength(1);
    const points = answer.series[0]!.points;
    expect(points).toHaveLength(181);
    expect(points[0]).toEqual([T0 + 15 * MINUTE, 80]);
    expect(points.at(-1)).toEqual([T0 + 30 * MINUTE, 360 % 100]);
    expect(await store.seriesNames(SOURCE)).toEqual(['cpu.total_pct', 'memory.used_bytes']);
  });

  test('a close with thousands of series writes every one (PostgreSQL: over several transactions at once), all there after a restart', async () => {
    const place = await kind.place();
    let store = await place.open();
    const sources = Array.from({ length: 3000 }, (_, i) => `node:${i}`);
    for (let t = T0; t < T0 + 3 * MINUTE; t += 5000) for (const [i, source] of sources.entries()) store.append(source, t, [['cpu.total_pct', i % 100], ['memory.used_bytes', i]]);
    await store.close();
    store = await place.open();
    for (const i of [0, 1, 1499, 2998, 2999]) {
      const answer = await store.query({ source: sources[i]!, names: ['cpu.total_pct', 'memory.used_bytes'], from: T0, to: T0 + 3 * MINUTE, now: T0 + 3 * MINUTE });
      expect(answer.series.map((x) => [x.name, x.points.length, x.points[0]![1]])).toEqual([['cpu.total_pct', 36, i % 100], ['memory.used_bytes', 36, i]]);
    }
  });

  test('goes on filling a series after a restart: the samples before and after it are all there, once', async () => {
    const place = await kind.place();
    let store = await place.open();
    await feed(store, T0, T0 + 20 * MINUTE, 5000, () => 10);
    await store.close();
    store = await place.open();
    await feed(store, T0 + 20 * MINUTE, T0 + 40 * MINUTE, 5000, () => 20);
    await store.close();
    store = await place.open();
    const points = (await cpu(store, T0, T0 + 40 * MINUTE, T0 + 40 * MINUTE)).series[0]!.points;
    expect(points).toHaveLength(480);
    expect(new Set(points.map(([ts]) => ts)).size).toBe(480);
    expect(points[239]).toEqual([T0 + 20 * MINUTE - 5000, 10]);
    expect(points[240]).toEqual([T0 + 20 * MINUTE, 20]);
  });

  test('rolls up per minute and per hour (min, max, mean, last) and reads rollups, not raw samples, for 7 and 30 days', async () => {
    const store = await (await kind.place()).open(defaultTiers(256 * MIB), 256 * MIB);
    // 0..11 within each minute, so each minute's mean is 5.5, and hours are the same.
    await feed(store, T0, T0 + 3 * DAY, 5000, (t) => ((t - T0) / 5000) % 12);
    const now = T0 + 3 * DAY;
    const week = await cpu(store, now - 7 * DAY, now, now);
    expect(week.tier).toBe('1m');
    expect(week.series[0]!.points.length).toBeLessThanOrEqual(1000);
    expect(week.series[0]!.points.every(([, v]) => v === 5.5)).toBe(true);
    const month = await cpu(store, now - 30 * DAY, now, now);
    expect(month.tier).toBe('1h');
    expect(month.step).toBe(HOUR);
    expect(month.series[0]!.points).toHaveLength(72);
    expect(month.series[0]!.points[0]).toEqual([T0, 5.5]);
    const day = await store.query({ source: SOURCE, names: ['cpu.*'], from: now - DAY, to: now, now });
    expect(day.tier).toBe('1m');
    expect(day.series.map((s) => s.name)).toEqual(['cpu.total_pct']);
    expect(day.series[0]!.points.length).toBeLessThanOrEqual(1000);
    // A wished step coarser than the tier: one point per step, the mean of the minutes in it.
    const tenMinutes = await cpu(store, now - DAY, now, now, 10 * MINUTE);
    expect(tenMinutes.step).toBe(10 * MINUTE);
    expect(tenMinutes.series[0]!.points).toHaveLength(144);
    expect(tenMinutes.series[0]!.points.every(([ts, v]) => ts % (10 * MINUTE) === 0 && v === 5.5)).toBe(true);
  });

  test('shows the newest sample at the right edge before any flush (live extension)', async () => {
    const store = await (await kind.place()).open();
    await feed(store, T0, T0 + 10 * MINUTE, 5000, () => 1);
    store.append(SOURCE, T0 + 10 * MINUTE + 1, [['cpu.total_pct', 77]]);
    const answer = await cpu(store, T0, T0 + HOUR, T0 + 11 * MINUTE);
    expect(answer.series[0]!.points.at(-1)).toEqual([T0 + 10 * MINUTE + 1, 77]);
  });

  test('writes a long burst of samples as it goes, without waiting for the flush timer, so none is dropped', async () => {
    const store = await (await kind.place()).open(defaultTiers(256 * MIB), 256 * MIB);
    let n = 0;
    for (let t = T0; t < T0 + 30 * DAY; t += 5 * MINUTE) {
      store.append(SOURCE, t, [['cpu.total_pct', 42]]);
      if (++n % 10 === 0) await turn();
    }
    const now = T0 + 30 * DAY;
    const old = await cpu(store, T0 + DAY, T0 + 3 * DAY, now);
    expect(old.tier).toBe('1m');
    expect(old.series[0]!.points.length).toBeGreaterThan(500);
    expect((await cpu(store, T0, now, now)).series[0]!.points).toHaveLength(720);
  });

  test('skips a sample older than the last one of its series instead of storing time backwards', async () => {
    const store = await (await kind.place()).open();
    store.append(SOURCE, T0 + 5000, [['cpu.total_pct', 1]]);
    store.append(SOURCE, T0, [['cpu.total_pct', 2]]);
    expect((await store.query({ source: SOURCE, names: [], from: T0 - 1, to: T0 + MINUTE, now: T0 + MINUTE })).series[0]!.points).toEqual([[T0 + 5000, 1]]);
  });

  test('keeps every sample in memory, queryable, while storage refuses a flush, and writes them all once it accepts again', async () => {
    const place = await kind.place();
    let store = await place.open();
    await feed(store, T0, T0 + 20 * MINUTE, 5000, (t) => ((t - T0) / 5000) % 50);
    await store.flush(true);
    await place.breakWrites();
    for (let t = T0 + 20 * MINUTE; t < T0 + HOUR; t += 5000) store.append(SOURCE, t, [['cpu.total_pct', ((t - T0) / 5000) % 50]]);
    await expect(store.flush(true)).rejects.toThrow(/open_chunks/);
    const during = (await cpu(store, T0, T0 + HOUR, T0 + HOUR)).series[0]!.points;
    expect(during).toHaveLength(720);
    expect(during.at(-1)).toEqual([T0 + HOUR - 5000, 719 % 50]);
    await place.mendWrites();
    await store.flush(true);
    await store.close();
    store = await place.open();
    expect((await cpu(store, T0, T0 + HOUR, T0 + HOUR)).series[0]!.points).toEqual(during);
  });

  test('deletes raw samples after 48 h and minutes after 30 days by the (fake) clock, keeping the coarser tiers', async () => {
    const store = await (await kind.place()).open(defaultTiers(256 * MIB), 256 * MIB);
    await feed(store, T0, T0 + 4 * DAY, 30_000, () => 3);
    const at4days = T0 + 4 * DAY;
    const report = await store.enforceRetention(at4days);
    expect(report.deletedChunks).toBeGreaterThan(0);
    // Asked as if it were recent, the first hour would be read raw: its raw samples are gone, the minutes answer.
    const firstHour = await cpu(store, T0, T0 + HOUR, T0 + HOUR);
    expect(firstHour.tier).toBe('1m');
    expect(firstHour.series[0]!.points).toHaveLength(61);
    const lastHour = await cpu(store, at4days - HOUR, at4days, at4days);
    expect(lastHour.series[0]!.points).toHaveLength(120);
    // The first day is still there in minutes (asked as if it were recent, the raw tier would be read).
    const firstDayMinutes = await cpu(store, T0, T0 + HOUR - 1, at4days);
    expect(firstDayMinutes.tier).toBe('1m');
    expect(firstDayMinutes.series[0]!.points).toHaveLength(60);
    // 31 days later the minutes are gone too, the hours stay.
    const later = T0 + 35 * DAY;
    await store.enforceRetention(later);
    const month = await cpu(store, T0, T0 + 4 * DAY, later);
    expect(month.tier).toBe('1h');
    expect(month.series[0]!.points).toHaveLength(96);
    // Even asked for minutes (as if they were still kept), the hours answer: the minutes are gone.
    const asMinutes = await cpu(store, T0, T0 + 3 * HOUR, T0 + 29 * DAY, MINUTE);
    expect(asMinutes.tier).toBe('1h');
    expect(asMinutes.series[0]!.points).toEqual([[T0, 3], [T0 + HOUR, 3], [T0 + 2 * HOUR, 3], [T0 + 3 * HOUR, 3]]);
  });

  test('answers from a coarser tier when a byte cap cut the finer one shorter than its age limit', async () => {
    const tiers = defaultTiers(256 * MIB).map((t) => (t.name === '1m' ? { ...t, maxBytes: 4096 } : t));
    const store = await (await kind.place()).open(tiers, 256 * MIB);
    await feed(store, T0, T0 + 4 * DAY, 30_000, () => 3);
    const now = T0 + 4 * DAY;
    await store.enforceRetention(now);
    expect(store.tierSizes()[1]).toBeLessThanOrEqual(4096);
    const week = await cpu(store, now - 3 * DAY, now, now);
    expect(week.tier).toBe('1h');
    expect(week.series[0]!.points).toHaveLength(72);
    // Recent ranges still read the minutes the cap left.
    expect((await cpu(store, now - 2 * HOUR, now, now)).tier).toBe('raw');
  });

  test('keeps the history within DVIC_METRICS_MAX_MB, deleting the oldest first', async () => {
    const budget = MIB;
    const store = await (await kind.place()).open(defaultTiers(budget), budget);
    // 10 nodes x 5 noisy series every 10 s for 2 days: several times the budget.
    const end = T0 + 2 * DAY;
    for (let t = T0, n = 0; t < end; t += 10_000, n++) {
      for (let node = 0; node < 10; node++) {
        store.append(`node:${node}`, t, Array.from({ length: 5 }, (_, i) => [`s${i}`, Math.round(Math.random() * 100_000) / 100] as [string, number]));
      }
      if (n % 60 === 0) {
        await store.flush();
        await store.enforceRetention(t);
        expect(await store.diskBytes()).toBeLessThanOrEqual(budget);
      }
    }
    await store.flush();
    await store.enforceRetention(end);
    expect(await store.diskBytes()).toBeLessThanOrEqual(budget);
    const sizes = store.tierSizes();
    defaultTiers(budget).forEach((tier, i) => expect(sizes[i]).toBeLessThanOrEqual(tier.maxBytes));
    const recent = await store.query({ source: 'node:7', names: ['s3'], from: end - 10 * MINUTE, to: end, now: end });
    expect(recent.series[0]!.points.length).toBeGreaterThanOrEqual(59);
    // The oldest raw samples are gone: a coarser tier answers what is left of the first minutes.
    const oldest = await store.query({ source: 'node:7', names: ['s3'], from: T0, to: T0 + 10 * MINUTE, now: T0 + 10 * MINUTE });
    expect(oldest.tier).not.toBe('raw');
    expect(oldest.series[0]!.points.length).toBeLessThan(10);
  }, 60_000);
});
