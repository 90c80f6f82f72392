import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultTiers } from '../../src/metrics/metric-store.js';
import { METRICS_FILE, SqliteMetricStore } from '../../src/metrics/sqlite-metric-store.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The fake clock's start: a whole hour, so buckets are easy to reason about. */
const T0 = Date.UTC(2026, 0, 1);
const SOURCE = 'node:n1';

const dirs: string[] = [];
function tempFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-metrics-'));
  dirs.push(dir);
  return path.join(dir, METRICS_FILE);
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Feeds `cpu.total_pct` (and a second series) every `everyMs` from `from` to `to`, value = f(t), flushing as the server does. */
function feed(store: SqliteMetricStore, from: number, to: number, everyMs: number, f: (t: number) => number): void {
  let n = 0;
  for (let t = from; t < to; t += everyMs) {
    store.append(SOURCE, t, [['cpu.total_pct', f(t)], ['memory.used_bytes', 1_000_000 + (t % 7)]]);
    if (++n % 500 === 0) store.flush();
  }
  store.flush();
}

describe('SQLite metric store', () => {
  it('forgets a removed source: its series leave memory, the file and the tier sizes; others stay, also after a restart', () => {
    const file = tempFile();
    let store = new SqliteMetricStore(file, defaultTiers(64 * 1024 * 1024), 64 * 1024 * 1024);
    feed(store, T0, T0 + 3 * HOUR, 5000, (t) => (t / 5000) % 100);
    for (let t = T0; t < T0 + 3 * HOUR; t += 5000) store.append('device:e1', t, [['temp_c', 21]]);
    store.flush(true);
    const before = store.tierSizes().reduce((a, b) => a + b, 0);
    store.removeSource(SOURCE);
    expect(store.sources()).toEqual(['device:e1']);
    expect(store.seriesNames(SOURCE)).toEqual([]);
    expect(store.query({ source: SOURCE, names: [], from: T0, to: T0 + 3 * HOUR, now: T0 + 3 * HOUR }).series).toEqual([]);
    expect(store.tierSizes().reduce((a, b) => a + b, 0)).toBeLessThan(before / 2);
    store.close();
    store = new SqliteMetricStore(file, defaultTiers(64 * 1024 * 1024), 64 * 1024 * 1024);
    expect(store.sources()).toEqual(['device:e1']);
    expect(store.query({ source: 'device:e1', names: ['temp_c'], from: T0, to: T0 + HOUR, now: T0 + 3 * HOUR }).series[0]!.points.length).toBeGreaterThan(100);
    store.close();
  });

  it('lets go of what a series idle past the raw tier holds in memory; its history still answers, once, after a restart', () => {
    const file = tempFile();
    let store = new SqliteMetricStore(file, defaultTiers(64 * 1024 * 1024), 64 * 1024 * 1024);
    feed(store, T0, T0 + 2 * HOUR + 30 * MINUTE, 5000, () => 40); // then silent
    for (let t = T0; t < T0 + 51 * HOUR; t += MINUTE) store.append('device:e1', t, [['temp_c', 21]]);
    store.flush(true);
    const busy = store.chunksInMemory();
    store.enforceRetention(T0 + 49 * HOUR); // the node's series: silent for more than 46 h, not yet 48
    expect(store.chunksInMemory()).toBe(busy);
    store.enforceRetention(T0 + 51 * HOUR);
    expect(store.chunksInMemory()).toBeLessThan(busy);
    const kept = store.chunksInMemory();
    const hours = () => store.query({ source: SOURCE, names: ['cpu.total_pct'], from: T0, to: T0 + 3 * HOUR, step: HOUR, now: T0 + 51 * HOUR }).series[0]!.points;
    expect(hours()).toEqual([[T0, 40], [T0 + HOUR, 40], [T0 + 2 * HOUR, 40]]);
    store.close();
    store = new SqliteMetricStore(file, defaultTiers(64 * 1024 * 1024), 64 * 1024 * 1024);
    expect(hours()).toEqual([[T0, 40], [T0 + HOUR, 40], [T0 + 2 * HOUR, 40]]);
    expect(store.chunksInMemory()).toBeLessThanOrEqual(kept);
    store.close();
  });

  it('answers raw samples for short ranges and keeps them across a restart (reload shows the past)', () => {
    const file = tempFile();
    let store = new SqliteMetricStore(file, defaultTiers(64 * 1024 * 1024), 64 * 1024 * 1024);
    feed(store, T0, T0 + HOUR, 5000, (t) => ((t - T0) / 5000) % 100);
    store.close();
    store = new SqliteMetricStore(file, defaultTiers(64 * 1024 * 1024), 64 * 1024 * 1024);
    const answer = store.query({ source: SOURCE, names: ['cpu.total_pct'], from: T0 + 15 * MINUTE, to: T0 + 30 * MINUTE, now: T0 + HOUR });
    expect(answer.tier).toBe('raw');
    expect(answer.series).toHaveLength(1);
    const points = answer.series[0]!.points;
    expect(points).toHaveLength(181);
    expect(points[0]).toEqual([T0 + 15 * MINUTE, 80]);
    expect(points.at(-1)).toEqual([T0 + 30 * MINUTE, 360 % 100]);
    expect(store.seriesNames(SOURCE)).toEqual(['cpu.total_pct', 'memory.used_bytes']);
    store.close();
  });

  it('rolls up per minute and per hour (min, max, mean, last) and reads rollups, not raw samples, for 7 and 30 days', () => {
    const store = new SqliteMetricStore(':memory:', defaultTiers(256 * 1024 * 1024), 256 * 1024 * 1024);
    // 0..11 within each minute, so each minute's mean is 5.5, and hours are the same.
    feed(store, T0, T0 + 3 * DAY, 5000, (t) => ((t - T0) / 5000) % 12);
    const now = T0 + 3 * DAY;
    const week = store.query({ source: SOURCE, names: ['cpu.total_pct'], from: now - 7 * DAY, to: now, now });
    expect(week.tier).toBe('1m');
    expect(week.series[0]!.points.length).toBeLessThanOrEqual(1000);
    expect(week.series[0]!.points.every(([, v]) => v === 5.5)).toBe(true);
    const month = store.query({ source: SOURCE, names: ['cpu.total_pct'], from: now - 30 * DAY, to: now, now });
    expect(month.tier).toBe('1h');
    expect(month.step).toBe(HOUR);
    expect(month.series[0]!.points).toHaveLength(72);
    expect(month.series[0]!.points[0]).toEqual([T0, 5.5]);
    const day = store.query({ source: SOURCE, names: ['cpu.*'], from: now - DAY, to: now, now });
    expect(day.tier).toBe('1m');
    expect(day.series.map((s) => s.name)).toEqual(['cpu.total_pct']);
    expect(day.series[0]!.points.length).toBeLessThanOrEqual(1000);
    store.close();
  });

  it('shows the newest sample at the right edge before any flush (live extension)', () => {
    const store = new SqliteMetricStore(':memory:', defaultTiers(64 * 1024 * 1024), 64 * 1024 * 1024);
    feed(store, T0, T0 + 10 * MINUTE, 5000, () => 1);
    store.append(SOURCE, T0 + 10 * MINUTE + 1, [['cpu.total_pct', 77]]);
    const answer = store.query({ source: SOURCE, names: ['cpu.total_pct'], from: T0, to: T0 + HOUR, now: T0 + 11 * MINUTE });
    expect(answer.series[0]!.points.at(-1)).toEqual([T0 + 10 * MINUTE + 1, 77]);
    store.close();
  });

  it('writes a long burst of samples as it goes, without waiting for the flush timer, so none is dropped', () => {
    const store = new SqliteMetricStore(tempFile(), defaultTiers(256 * 1024 * 1024), 256 * 1024 * 1024);
    for (let t = T0; t < T0 + 30 * DAY; t += 5 * MINUTE) store.append(SOURCE, t, [['cpu.total_pct', 42]]);
    const now = T0 + 30 * DAY;
    const old = store.query({ source: SOURCE, names: ['cpu.total_pct'], from: T0 + DAY, to: T0 + 3 * DAY, now });
    expect(old.tier).toBe('1m');
    expect(old.series[0]!.points.length).toBeGreaterThan(500);
    expect(store.query({ source: SOURCE, names: ['cpu.total_pct'], from: T0, to: now, now }).series[0]!.points).toHaveLength(720);
    store.close();
  });

  it('skips a sample older than the last one of its series instead of storing time backwards', () => {
    const store = new SqliteMetricStore(':memory:', defaultTiers(64 * 1024 * 1024), 64 * 1024 * 1024);
    store.append(SOURCE, T0 + 5000, [['cpu.total_pct', 1]]);
    store.append(SOURCE, T0, [['cpu.total_pct', 2]]);
    expect(store.query({ source: SOURCE, names: [], from: T0 - 1, to: T0 + MINUTE, now: T0 + MINUTE }).series[0]!.points).toEqual([[T0 + 5000, 1]]);
    store.close();
  });

  it('deletes raw samples after 48 h and minutes after 30 days by the (fake) clock, keeping the coarser tiers', () => {
    const store = new SqliteMetricStore(tempFile(), defaultTiers(256 * 1024 * 1024), 256 * 1024 * 1024);
    feed(store, T0, T0 + 4 * DAY, 30_000, () => 3);
    const at4days = T0 + 4 * DAY;
    const report = store.enforceRetention(at4days);
    expect(report.deletedChunks).toBeGreaterThan(0);
    // Asked as if it were recent, the first hour would be read raw: its raw samples are gone, the minutes answer.
    const firstHour = store.query({ source: SOURCE, names: ['cpu.total_pct'], from: T0, to: T0 + HOUR, now: T0 + HOUR });
    expect(firstHour.tier).toBe('1m');
    expect(firstHour.series[0]!.points).toHaveLength(61);
    const lastHour = store.query({ source: SOURCE, names: ['cpu.total_pct'], from: at4days - HOUR, to: at4days, now: at4days });
    expect(lastHour.series[0]!.points).toHaveLength(120);
    // The first day is still there in minutes (asked as if it were recent, the raw tier would be read).
    const firstDayMinutes = store.query({ source: SOURCE, names: ['cpu.total_pct'], from: T0, to: T0 + HOUR - 1, now: at4days });
    expect(firstDayMinutes.tier).toBe('1m');
    expect(firstDayMinutes.series[0]!.points).toHaveLength(60);
    // 31 days later the minutes are gone too, the hours stay.
    const later = T0 + 35 * DAY;
    store.enforceRetention(later);
    const month = store.query({ source: SOURCE, names: ['cpu.total_pct'], from: T0, to: T0 + 4 * DAY, now: later });
    expect(month.tier).toBe('1h');
    expect(month.series[0]!.points).toHaveLength(96);
    // Even asked for minutes (as if they were still kept), the hours answer: the minutes are gone.
    const asMinutes = store.query({ source: SOURCE, names: ['cpu.total_pct'], from: T0, to: T0 + 3 * HOUR, step: MINUTE, now: T0 + 29 * DAY });
    expect(asMinutes.tier).toBe('1h');
    expect(asMinutes.series[0]!.points).toEqual([[T0, 3], [T0 + HOUR, 3], [T0 + 2 * HOUR, 3], [T0 + 3 * HOUR, 3]]);
    store.close();
  });

  it('answers from a coarser tier when a byte cap cut the finer one shorter than its age limit', () => {
    const tiers = defaultTiers(256 * 1024 * 1024).map((t) => (t.name === '1m' ? { ...t, maxBytes: 4096 } : t));
    const store = new SqliteMetricStore(tempFile(), tiers, 256 * 1024 * 1024);
    feed(store, T0, T0 + 4 * DAY, 30_000, () => 3);
    const now = T0 + 4 * DAY;
    store.enforceRetention(now);
    expect(store.tierSizes()[1]).toBeLessThanOrEqual(4096);
    const week = store.query({ source: SOURCE, names: ['cpu.total_pct'], from: now - 3 * DAY, to: now, now });
    expect(week.tier).toBe('1h');
    expect(week.series[0]!.points).toHaveLength(72);
    // Recent ranges still read the minutes the cap left.
    expect(store.query({ source: SOURCE, names: ['cpu.total_pct'], from: now - 2 * HOUR, to: now, now }).tier).toBe('raw');
    store.close();
  });

  it('keeps the file within DVIC_METRICS_MAX_MB, deleting the oldest first', () => {
    const budget = 1024 * 1024;
    const store = new SqliteMetricStore(tempFile(), defaultTiers(budget), budget);
    // 20 nodes x 5 noisy series every 10 s for 2 days: several times the budget.
    const end = T0 + 2 * DAY;
    for (let t = T0, n = 0; t < end; t += 10_000, n++) {
      for (let node = 0; node < 20; node++) {
        store.append(`node:${node}`, t, Array.from({ length: 5 }, (_, i) => [`s${i}`, Math.round(Math.random() * 100_000) / 100] as [string, number]));
      }
      if (n % 60 === 0) {
        store.flush();
        store.enforceRetention(t);
        expect(store.diskBytes()).toBeLessThanOrEqual(budget);
      }
    }
    store.flush();
    store.enforceRetention(end);
    expect(store.diskBytes()).toBeLessThanOrEqual(budget);
    const sizes = store.tierSizes();
    defaultTiers(budget).forEach((tier, i) => expect(sizes[i]).toBeLessThanOrEqual(tier.maxBytes));
    const recent = store.query({ source: 'node:7', names: ['s3'], from: end - 10 * MINUTE, to: end, now: end });
    expect(recent.series[0]!.points.length).toBeGreaterThanOrEqual(59);
    // The oldest raw samples are gone: a coarser tier answers what is left of the first minutes.
    const oldest = store.query({ source: 'node:7', names: ['s3'], from: T0, to: T0 + 10 * MINUTE, now: T0 + 10 * MINUTE });
    expect(oldest.tier).not.toBe('raw');
    expect(oldest.series[0]!.points.length).toBeLessThan(10);
    store.close();
  });
});
