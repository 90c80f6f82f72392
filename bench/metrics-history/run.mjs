#!/usr/bin/env node
// bench/metrics-history: the metric store (server/dist/metrics) fed through its own API, in this process,
// on SQLite (its own file) and on PostgreSQL (its tables in a database of the bench's own on
// 127.0.0.1:5432, dropped after), one after the other in the same run. STORES=sqlite or
// STORES=postgres runs one; PostgreSQL not answering: its half is skipped (said in the output).
// 1. History: NODES nodes x SERIES series, a sample every INTERVAL_S s for DAYS days (fake clock),
//    flushed every simulated FLUSH_S s and retention/budget applied every simulated hour, as the
//    server does: ingest rate (samples/s) and CPU.
// 2. Bytes per sample on disk: the file's pages in use per sample, measured at 47 h (raw tier full,
//    nothing deleted yet: every sample is on disk), and at the end (30 days: raw 48 h + rollups).
// 3. Chart queries: what the node page asks (every series of one node), for 24 h and 30 days,
//    QUERIES times each on random nodes: p50/p99 (ms). Goal: 24-h chart p99 < 50 ms.
// 4. Live ingest CPU: LIVE_NODES nodes sending a full hardware state (about 20 series) every 1 s for
//    LIVE_S s of real time, flushed every 10 s (the server's default): % of one core. Goal: < 10 %.
//   NODES=1000 SERIES=1 DAYS=30 INTERVAL_S=5 node bench/metrics-history/run.mjs
// PostgreSQL: "bytes on disk" are the live rows (what the budget counts); the tables' size with
// indexes, TOAST and space not yet reused (pg_total_relation_size) is printed beside.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { hardwareSeries } from '@dvic/protocol';
import { machine } from '../lib/process-stats.mjs';
import { defaultTiers } from '../../server/dist/metrics/metric-store.js';
import { PostgresMetricStore } from '../../server/dist/metrics/postgres-metric-store.js';
import { METRICS_FILE, SqliteMetricStore } from '../../server/dist/metrics/sqlite-metric-store.js';

const NODES = Number(process.env.NODES ?? 1000);
const SERIES = Number(process.env.SERIES ?? 1);
const DAYS = Number(process.env.DAYS ?? 30);
const INTERVAL_S = Number(process.env.INTERVAL_S ?? 5);
const FLUSH_S = Number(process.env.FLUSH_S ?? 10);
const BUDGET_MB = Number(process.env.BUDGET_MB ?? 1024);
const QUERIES = Number(process.env.QUERIES ?? 200);
const LIVE_NODES = Number(process.env.LIVE_NODES ?? 1000);
const LIVE_S = Number(process.env.LIVE_S ?? 20);
const STORES = (process.env.STORES ?? 'sqlite,postgres').split(',');
const PG_ADMIN_URL = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const percentile = (v, p) => v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))];
const cpuSeconds = (u) => (u.user + u.system) / 1e6;
const fmt = (n, d = 1) => n.toFixed(d);
const mib = (b) => fmt(b / 1048576);

console.log(`metrics-history: ${NODES} nodes x ${SERIES} series, a sample every ${INTERVAL_S} s for ${DAYS} days (${fmt((NODES * SERIES * DAYS * DAY) / (INTERVAL_S * 1000) / 1e6, 0)} M samples), budget ${BUDGET_MB} MiB`);
console.log(`machine: ${machine()}`);

// Values like an agent's: percents and degrees with one decimal wandering slowly, byte counts in pages.
const SERIES_NAMES = Array.from({ length: SERIES }, (_, s) => ['cpu.total_pct', 'temperatures.thermal_zone0.celsius', 'memory.used_bytes'][s] ?? `extra.${s}`);
const walk = new Float64Array(NODES * SERIES).map(() => Math.random() * 80);
function sample(node) {
  const out = new Array(SERIES);
  for (let s = 0; s < SERIES; s++) {
    const k = node * SERIES + s;
    walk[k] = Math.min(100, Math.max(0, walk[k] + (Math.random() - 0.5) * 4));
    const v = Math.round(walk[k] * 10) / 10;
    out[s] = [SERIES_NAMES[s], s % 3 === 2 ? Math.round(v * 1e7 / 4096) * 4096 : v];
  }
  return out;
}

const budget = BUDGET_MB * 1024 * 1024;

/** A place for history: open() a store on it (again: the same place), size() what it takes on disk, remove() it. */
function sqlitePlace() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-metrics-bench-'));
  const file = path.join(dir, METRICS_FILE);
  return {
    open: async () => new SqliteMetricStore(file, defaultTiers(budget), budget),
    size: async () => `file ${mib(fs.statSync(file).size)} MiB`,
    remove: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

async function asAdmin(text) {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  await admin.connect();
  try {
    await admin.query(text);
  } finally {
    await admin.end();
  }
}

async function postgresPlace() {
  const database = `dvic_bench_${crypto.randomBytes(4).toString('hex')}`;
  await asAdmin(`CREATE DATABASE ${database}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${database}`;
  let last;
  return {
    open: async () => (last = await PostgresMetricStore.open(url.toString(), defaultTiers(budget), budget)),
    size: async () => `tables ${mib(await last.relationBytes())} MiB with indexes and space not yet reused`,
    remove: () => asAdmin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`),
  };
}

// 1 + 2: the history. 3: chart queries, the node page's (every series of a node).
async function history(place) {
  const store = await place.open();
  const end = Date.UTC(2026, 10, 1);
  const start = end - DAYS * DAY;
  const step = INTERVAL_S * 1000;
  let samples = 0;
  let bytesPerSample47h = NaN;
  let relation47h = '';
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  let lastReport = wall0;
  for (let t = start; t < end; t += step) {
    for (let n = 0; n < NODES; n++) store.append(`node:${n}`, t, sample(n));
    samples += NODES * SERIES;
    if ((t - start) % (FLUSH_S * 1000) < step) await store.flush();
    if ((t - start) % HOUR < step) await store.enforceRetention(t);
    if (Number.isNaN(bytesPerSample47h) && t - start >= 47 * HOUR) {
      await store.flush(true);
      bytesPerSample47h = (await store.diskBytes()) / samples;
      relation47h = await place.size();
    }
    if (performance.now() - lastReport > 30_000) {
      lastReport = performance.now();
      console.log(`  ... day ${fmt((t - start) / DAY)} of ${DAYS}: ${fmt(samples / ((lastReport - wall0) / 1000) / 1e6, 2)} M samples/s`);
    }
  }
  await store.flush(true);
  await store.enforceRetention(end);
  const wallS = (performance.now() - wall0) / 1000;
  const cpuS = cpuSeconds(process.cpuUsage(cpu0));
  console.log(`ingest: ${fmt(samples / 1e6, 1)} M samples in ${fmt(wallS)} s = ${fmt(samples / wallS / 1e6, 2)} M samples/s (CPU of this process ${fmt(cpuS)} s, ${fmt((cpuS / samples) * 1e9, 0)} ns/sample)`);
  if (DAYS * DAY > 47 * HOUR) console.log(`bytes per sample on disk at 47 h (every sample kept, nothing deleted yet): ${fmt(bytesPerSample47h, 2)} B (${relation47h})  (Netdata 0.6 B at 1 s, Prometheus 1-2 B)`);
  console.log(`after ${DAYS} days: ${mib(await store.diskBytes())} MiB in use (${await place.size()}); tiers raw/1m/1h ${store.tierSizes().map(mib).join(' / ')} MiB; budget ${BUDGET_MB} MiB`);
  for (const [label, span] of [['24-h', DAY], ['30-day', 30 * DAY]]) {
    const times = [];
    let points = 0;
    let tier = '';
    for (let q = 0; q < QUERIES; q++) {
      const node = Math.floor(Math.random() * NODES);
      const t0 = performance.now();
      const answer = await store.query({ source: `node:${node}`, names: [], from: end - span, to: end, now: end });
      times.push(performance.now() - t0);
      points += answer.series.reduce((n, s) => n + s.points.length, 0);
      tier = answer.tier;
    }
    times.sort((a, b) => a - b);
    console.log(`${label} chart (${SERIES} series, tier ${tier}, ${fmt(points / QUERIES, 0)} points): p50 ${fmt(percentile(times, 50), 2)} ms, p99 ${fmt(percentile(times, 99), 2)} ms${label === '24-h' ? ' (goal p99 < 50 ms)' : ''}`);
  }
  await store.close();
}

// 4: live ingest at 1 s, real time, full hardware states.
const hw = (n) => ({
  ts: Date.now(), interval_s: 1, host: { hostname: `pi-${n}`, os: 'Linux', kernel: '6.1', arch: 'aarch64', boot_id: 'x', agent_version: 'bench' }, uptime_s: 1000,
  cpu: { total_pct: Math.round(Math.random() * 1000) / 10, per_core_pct: [0, 1, 2, 3].map(() => Math.round(Math.random() * 1000) / 10) },
  load: { load1: 0.5, load5: 0.4, load15: 0.3 },
  memory: { total_bytes: 4e9, available_bytes: 3e9 - Math.round(Math.random() * 1e4) * 4096, used_bytes: 1e9 + Math.round(Math.random() * 1e4) * 4096, swap_total_bytes: 0, swap_used_bytes: 0 },
  filesystems: [{ mount: '/', fstype: 'ext4', size_bytes: 32e9, used_bytes: 8e9, avail_bytes: 24e9 }],
  temperatures: [{ sensor: 'thermal_zone0', source: 'thermal', celsius: 45 + Math.round(Math.random() * 50) / 10 }],
  processes: 180, network: [{ iface: 'eth0', rx_bytes: 1e6, tx_bytes: 2e6, rx_bytes_per_s: Math.round(Math.random() * 1e5), tx_bytes_per_s: Math.round(Math.random() * 1e4) }],
});

async function liveIngest(place) {
  const live = await place.open();
  const states = Array.from({ length: LIVE_NODES }, (_, n) => hw(n));
  const perNode = hardwareSeries(states[0]).length;
  const liveCpu0 = process.cpuUsage();
  const liveWall0 = performance.now();
  const flushes = [];
  let tick = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const now = Date.now();
      for (let n = 0; n < LIVE_NODES; n++) {
        states[n].cpu.total_pct = Math.round(Math.random() * 1000) / 10;
        live.append(`node:${n}`, now, hardwareSeries(states[n]));
      }
      // As the server's flush timer: in the background, while samples keep coming.
      if (++tick % 10 === 0) flushes.push(live.flush());
      if (tick >= LIVE_S) {
        clearInterval(timer);
        resolve();
      }
    }, 1000);
  });
  await Promise.all(flushes);
  const liveCpu = cpuSeconds(process.cpuUsage(liveCpu0));
  const liveWall = (performance.now() - liveWall0) / 1000;
  console.log(`live ingest: ${LIVE_NODES} nodes x ${perNode} series every 1 s for ${LIVE_S} s: ${fmt((100 * liveCpu) / liveWall)} % of one core of this process (goal < 10 %), including flattening each hardware state`);
  await live.close();
}

for (const kind of STORES) {
  let place;
  try {
    place = kind === 'postgres' ? await postgresPlace() : sqlitePlace();
  } catch (err) {
    console.log(`\n== ${kind}: skipped (${err.message})`);
    continue;
  }
  console.log(`\n== ${kind}${kind === 'postgres' ? ` (${PG_ADMIN_URL.replace(/\/[^/]*$/, '')}; the server's own CPU is not counted)` : ''}`);
  try {
    await history(place);
    await place.remove();
    place = kind === 'postgres' ? await postgresPlace() : sqlitePlace();
    await liveIngest(place);
  } finally {
    await place.remove();
  }
}
