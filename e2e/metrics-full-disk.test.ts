// The metric store on a real small disk (tmpfs) that fills up: samples wait in memory, stay
// queryable, and are written once there is room; nothing crashes.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultTiers } from '../server/src/metrics/metric-store.js';
import { METRICS_FILE, SqliteMetricStore } from '../server/src/metrics/sqlite-metric-store.js';
import { canMount, mountRequired, SmallDisk } from './support/small-disk.js';

const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

describe.skipIf(!canMount && !mountRequired)('metric history on a full disk (real tmpfs)', () => {
  let disk: SmallDisk;
  beforeAll(() => { disk = SmallDisk.mount(8); });
  afterAll(() => disk?.unmount());

  it('keeps samples in memory while the disk is full and writes them once there is room', async () => {
    const file = path.join(disk.dir, METRICS_FILE);
    const budget = 64 * 1024 * 1024;
    let store = new SqliteMetricStore(file, defaultTiers(budget), budget);
    const feed = (from: number, to: number) => {
      for (let t = from; t < to; t += 5000) store.append('node:a', t, Array.from({ length: 20 }, (_, i) => [`s${i}`, Math.round(Math.random() * 10_000) / 10] as [string, number]));
    };
    feed(T0, T0 + 20 * MINUTE);
    await store.flush(true);
    disk.fill();
    feed(T0 + 20 * MINUTE, T0 + 60 * MINUTE);
    await expect(store.flush(true)).resolves.toBeUndefined();
    await expect(store.enforceRetention(T0 + 60 * MINUTE)).resolves.toBeDefined();
    const during = await store.query({ source: 'node:a', names: ['s3'], from: T0, to: T0 + 60 * MINUTE, now: T0 + 60 * MINUTE });
    expect(during.series[0]!.points).toHaveLength(720);
    disk.unfill();
    await store.flush(true);
    await store.close();
    store = new SqliteMetricStore(file, defaultTiers(budget), budget);
    const after = await store.query({ source: 'node:a', names: ['s3'], from: T0, to: T0 + 60 * MINUTE, now: T0 + 60 * MINUTE });
    expect(after.series[0]!.points).toEqual(during.series[0]!.points);
    await store.close();
  });
});
