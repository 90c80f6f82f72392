// The store stage of the log pipeline on its own, on SQLite and on PostgreSQL, with the same
// batches: the server's log writer (one transaction per group of batches, a savepoint each, the
// answer from the commit) into the log store. STREAMS simulated agents each keep IN_FLIGHT batches
// of BATCH lines unanswered, as the agent does; lines/s once all are answered. Each run goes in a
// process of its own, ROUNDS (default 3) alternating runs per store, the median shown.
// PostgreSQL: a database of its own (dvic_bench_<random>), migrated, dropped at the end; the CPU
// of its backends is measured too (lines per backend CPU second say what the database costs
// whatever else runs on the machine).
// Then SQLite's two ways to insert a batch, on fresh databases with the same records: the
// repository's multi-row statements, and one prepared single-row statement per record.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDatabase, followBackends } from '../lib/lab.mjs';
import { repoDir } from '../lib/server.mjs';

const dist = (file) => import(path.join(repoDir, 'server/dist', file));

/** The writer and store over one Sql; close() ends it. */
async function sqliteStore() {
  const { openDatabase } = await dist('db/database.js');
  const { attachSearchIndex } = await dist('db/log-search-index.js');
  const { SqliteSql } = await dist('db/sqlite-sql.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-bench-store-'));
  const db = openDatabase(path.join(dir, 'dvic.sqlite'));
  attachSearchIndex(db, path.join(dir, 'dvic-search.sqlite'));
  return { sql: new SqliteSql(db), close: async () => { db.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

async function postgresStore(adminUrl) {
  const { migratePostgres } = await dist('db/postgres-migrate.js');
  const { PostgresSql } = await dist('db/postgres-sql.js');
  const database = await createDatabase(adminUrl);
  try {
    await migratePostgres(database.url);
  } catch (err) {
    await database.drop();
    throw err;
  }
  const sql = new PostgresSql({ url: database.url, poolSize: 10 });
  return { sql, database: database.name, close: async () => { await sql.close(); await database.drop(); } };
}

const message = (stream, i) => `2026-11-26 04:00:00.000 INFO [camera-${stream}] frame ${i} processed in 12.5 ms, queue depth 3, detector=yolo-tiny score=0.87`;

const record = (stream, i) => ({
  nodeId: `node-${stream}`, source: 'system', stream: `system:journal:${stream}`, offset: i * 200, demo: null, token: null,
  ts: Date.now(), level: 2, message: message(stream, i), fields: i % 10 === 0 ? { unit: 'camera.service', pid: 4242 } : null,
});

/** Writes STREAMS x LINES lines; returns lines/s, this process's CPU share and (PostgreSQL) its backends' CPU. */
async function measure(store, { streams, lines, batch, inFlight }) {
  const { LogsRepository } = await dist('repositories/logs-repository.js');
  const { LogWriter } = await dist('services/log-writer.js');
  const { FaultInjector } = await dist('services/fault-injection.js');
  const logs = await LogsRepository.open(store.sql);
  const quiet = { error() {}, warn() {}, info() {}, debug() {}, child() { return quiet; } };
  const noDemos = { storeLineCounts() {}, countLines() {}, recordClosing() {} };
  const writer = new LogWriter(store.sql, logs, noDemos, new FaultInjector(), quiet);
  const send = (stream, from) => new Promise((resolve, reject) => writer.write({
    nodeId: `node-${stream}`,
    records: Array.from({ length: Math.min(batch, lines - from) }, (_, i) => record(stream, from + i)),
    stored: (stored) => resolve(stored.length),
    failed: (failure) => reject(new Error(failure.message)),
  }));
  const agent = async (stream) => {
    let next = 0;
    const window = new Set();
    while (next < lines || window.size) {
      while (next < lines && window.size < inFlight) {
        const sent = send(stream, next).finally(() => window.delete(sent));
        window.add(sent);
        next += batch;
      }
      await Promise.race(window);
    }
  };
  const backends = store.database && followBackends(store.database, 200);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: streams }, (_, s) => agent(s)));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const database = await backends?.stop();
  const stored = (await store.sql.get('SELECT COUNT(*) AS n FROM log_records')).n;
  return { stored, seconds, linesPerSecond: stored / seconds, cpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100, database };
}

const STORES = { SQLite: () => sqliteStore(), PostgreSQL: (adminUrl) => postgresStore(adminUrl) };

/** One store's stage in this process (a child of compareStores): its result as one JSON line. */
async function measureOne(name, adminUrl, options) {
  let store;
  try {
    store = await STORES[name](adminUrl);
    return await measure(store, options);
  } catch (err) {
    return { error: err.message };
  } finally {
    await store?.close();
  }
}

/** Each run in a fresh process: a store's figure never pays for the heap another run left behind. */
function measureInChild(name, adminUrl, options) {
  // The URL goes in the environment: a password in it would show in the process list on argv.
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), name, JSON.stringify(options)], {
    encoding: 'utf8', timeout: 600_000, env: { ...process.env, STORE_STAGE_ADMIN_URL: adminUrl },
  });
  const line = child.stdout?.trim().split('\n').at(-1);
  try {
    return JSON.parse(line);
  } catch {
    return { error: `the ${name} run failed: ${(child.stderr || child.error?.message || 'no output').trim().split('\n').at(-1)}` };
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** The median run by lines/s (a failed run makes the whole figure a failure). */
function summarize(runs) {
  const failed = runs.find((r) => r.error);
  if (failed) return failed;
  const rates = runs.map((r) => r.linesPerSecond);
  return { ...runs.find((r) => r.linesPerSecond === median(rates)), rates };
}

/**
 * Prints the store stage on SQLite and PostgreSQL side by side: `rounds` alternating runs of each,
 * each in a process of its own, the median shown with every run's rate. `adminUrl`: a PostgreSQL
 * the bench may create and drop a database on.
 */
export async function compareStores(adminUrl, options, rounds = 3) {
  const { streams, lines, batch, inFlight } = options;
  console.log(`store stage: ${streams} streams x ${lines} lines, batches of ${batch}, ${inFlight} in flight per stream (log writer -> log store, each run in a process of its own; median of ${rounds} alternating runs)`);
  const runs = { SQLite: [], PostgreSQL: [] };
  for (let round = 0; round < rounds; round++) {
    for (const name of Object.keys(runs)) runs[name].push(measureInChild(name, adminUrl, options));
  }
  const results = Object.entries(runs).map(([name, r]) => [name, summarize(r)]);
  console.log('store        lines stored  seconds  lines/s   process CPU  database CPU  lines per database CPU s   (every run, lines/s)');
  for (const [name, r] of results) {
    if (r.error) console.log(`${name.padEnd(13)}failed: ${r.error}`);
    else {
      const database = (r.database ? `${r.database.cpuPercentOfCore.toFixed(0)} %`.padEnd(14) + (r.stored / r.database.cpuSeconds).toFixed(0) : '(in the process)').padEnd(42);
      console.log(`${name.padEnd(13)}${String(r.stored).padEnd(14)}${r.seconds.toFixed(2).padEnd(9)}${r.linesPerSecond.toFixed(0).padEnd(10)}${`${r.cpuPercent.toFixed(0)} %`.padEnd(13)}${database}(${r.rates.map((x) => x.toFixed(0)).join(', ')})`);
    }
  }
  const postgres = results.find(([name]) => name === 'PostgreSQL')[1];
  if (!postgres.error) console.log(`PostgreSQL goal >= 50,000 lines/s: ${postgres.linesPerSecond >= 50_000 ? 'met' : 'MISSED'} (median run)`);
  return results;
}

const COLUMNS = 'node_id, source, stream, "offset", demo, token, ts, level, message, fields, size';

/** One prepared single-row INSERT per record, synchronous on the connection (the insert before the async Sql layer). */
function insertPerRow(db, records) {
  const insert = db.prepare(`INSERT INTO log_records (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`);
  return records.map((r) => {
    const fields = r.fields && JSON.stringify(r.fields);
    return insert.get(r.nodeId, r.source, r.stream, r.offset, r.demo, r.token, r.ts, r.level, r.message, fields, r.message.length + (fields?.length ?? 0) + 64);
  });
}

/** Lines/s of the inserter `open(store)` makes for `total` lines in transactions of `batch`, on a fresh SQLite store. */
async function timeSqliteInsert(open, total, batch) {
  const store = await sqliteStore();
  try {
    const insert = await open(store);
    const t0 = performance.now();
    for (let from = 0; from < total; from += batch) {
      const records = Array.from({ length: Math.min(batch, total - from) }, (_, i) => record(from % 8, from + i));
      await store.sql.transaction(async () => insert(records));
    }
    return total / ((performance.now() - t0) / 1000);
  } finally {
    await store.close();
  }
}

/**
 * SQLite's insert strategies side by side (ROUNDS alternating runs each, best kept): the
 * repository's multi-row statements (insertNew) against one prepared single-row statement per record.
 */
export async function compareSqliteInserts({ lines, batch, rounds = 3 }) {
  const { LogsRepository } = await dist('repositories/logs-repository.js');
  const strategies = {
    'multi-row (insertNew)': async (store) => { const logs = await LogsRepository.open(store.sql); return (records) => logs.insertNew(records); },
    'per-row prepared': async (store) => (records) => insertPerRow(store.sql.db, records),
  };
  const best = Object.fromEntries(Object.keys(strategies).map((name) => [name, 0]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, open] of Object.entries(strategies)) best[name] = Math.max(best[name], await timeSqliteInsert(open, lines, batch));
  }
  console.log(`\nSQLite insert strategies: ${lines} lines in transactions of ${batch}, best of ${rounds} alternating runs`);
  for (const [name, rate] of Object.entries(best)) console.log(`  ${name.padEnd(24)}${rate.toFixed(0)} lines/s`);
  const [multi, perRow] = Object.values(best);
  console.log(`  multi-row / per-row: ${(multi / perRow).toFixed(2)}`);
}

// A child of compareStores: STORE_STAGE_ADMIN_URL=... node store-stage.mjs <SQLite|PostgreSQL> <options as JSON>
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [name, options] = process.argv.slice(2);
  console.log(JSON.stringify(await measureOne(name, process.env.STORE_STAGE_ADMIN_URL, JSON.parse(options))));
  process.exit(0);
}
