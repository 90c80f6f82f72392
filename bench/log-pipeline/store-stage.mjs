// The store stage of the log pipeline on its own, on SQLite and on PostgreSQL, with the same
// batches: the server's log writer (one transaction per group of batches, a savepoint each, the
// answer from the commit) into the log store. STREAMS simulated agents each keep IN_FLIGHT batches
// of BATCH lines unanswered, as the agent does; lines/s once all are answered.
// PostgreSQL: a database of its own (dvic_bench_<random>), migrated, dropped at the end.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
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
  const name = `dvic_bench_${crypto.randomBytes(6).toString('hex')}`;
  const admin = async (statement) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try { await client.query(statement); } finally { await client.end(); }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  try {
    await migratePostgres(url);
  } catch (err) {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    throw err;
  }
  const sql = new PostgresSql({ url, poolSize: 10 });
  return { sql, close: async () => { await sql.close(); await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); } };
}

const message = (stream, i) => `2026-11-26 04:00:00.000 INFO [camera-${stream}] frame ${i} processed in 12.5 ms, queue depth 3, detector=yolo-tiny score=0.87`;

/** Writes STREAMS x LINES lines; returns lines/s and the server process's CPU share. */
async function measure(store, { streams, lines, batch, inFlight }) {
  const { LogsRepository } = await dist('repositories/logs-repository.js');
  const { LogWriter } = await dist('services/log-writer.js');
  const { FaultInjector } = await dist('services/fault-injection.js');
  const logs = await LogsRepository.open(store.sql);
  const quiet = { error() {}, warn() {}, info() {}, debug() {}, child() { return quiet; } };
  const noDemos = { storeLineCounts() {}, countLines() {}, recordClosing() {} };
  const writer = new LogWriter(store.sql, logs, noDemos, new FaultInjector(), quiet);
  const send = (stream, from) => new Promise((resolve, reject) => writer.write({
    records: Array.from({ length: Math.min(batch, lines - from) }, (_, i) => ({
      nodeId: `node-${stream}`, source: 'system', stream: `system:journal:${stream}`, offset: (from + i) * 200, demo: null, token: null,
      ts: Date.now(), level: 2, message: message(stream, from + i), fields: i % 10 === 0 ? { unit: 'camera.service', pid: 4242 } : null,
    })),
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
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: streams }, (_, s) => agent(s)));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const stored = (await store.sql.get('SELECT COUNT(*) AS n FROM log_records')).n;
  return { stored, seconds, linesPerSecond: stored / seconds, cpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100 };
}

/**
 * Prints the store stage on SQLite and PostgreSQL side by side. `adminUrl`: a PostgreSQL the
 * bench may create and drop a database on.
 */
export async function compareStores(adminUrl, options) {
  const { streams, lines, batch, inFlight } = options;
  console.log(`store stage: ${streams} streams x ${lines} lines, batches of ${batch}, ${inFlight} in flight per stream (log writer -> log store, in this process)`);
  const results = [];
  for (const [name, open] of [['SQLite', sqliteStore], ['PostgreSQL', () => postgresStore(adminUrl)]]) {
    let store;
    try {
      store = await open();
      results.push([name, await measure(store, options)]);
    } catch (err) {
      results.push([name, { error: err.message }]);
    } finally {
      await store?.close();
    }
  }
  console.log('store        lines stored  seconds  lines/s   process CPU');
  for (const [name, r] of results) {
    if (r.error) console.log(`${name.padEnd(13)}failed: ${r.error}`);
    else console.log(`${name.padEnd(13)}${String(r.stored).padEnd(14)}${r.seconds.toFixed(2).padEnd(9)}${r.linesPerSecond.toFixed(0).padEnd(10)}${r.cpuPercent.toFixed(0)} %`);
  }
  const postgres = results.find(([name]) => name === 'PostgreSQL')[1];
  if (!postgres.error) console.log(`PostgreSQL goal >= 50,000 lines/s: ${postgres.linesPerSecond >= 50_000 ? 'met' : 'MISSED'}`);
  return results;
}
