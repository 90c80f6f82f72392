#!/usr/bin/env node
// bench/log-pipeline: demo writers (the Python library) -> real agent -> real server -> live tail.
// 1. Throughput: WRITERS writers write LINES lines each as fast as they can; lines/s stored.
// 2. Latency at fixed rates (RATES): write() -> live-tail subscriber (which sees a record only
//    after its commit), p50/p99; agent and server CPU and RSS.
// 3. Side by side with rsyslog: WRITERS writers at SIDE_RATE lines/s in all for SIDE_S s, the agent
//    and Debian's rsyslogd (imfile -> omfwd to a local TCP sink) tailing the same files at the same
//    time; CPU of each per line, as % of one core per 10,000 lines/s. Goal: the agent <= rsyslog.
//   WRITERS=4 LINES=50000 RATES=1000,5000 RATE_S=15 SIDE_RATE=10000 SIDE_S=15 node bench/log-pipeline/run.mjs
// DEBUG_LAG=1 prints every line slower than 150 ms; SERVER_NODE_OPTIONS passes options (e.g. a
// --require'd profiler) to the server process.
// --store postgres: the store stage (log writer -> log store) on SQLite and on PostgreSQL side by
// side instead, with the same batches (store-stage.mjs; PG_URL, default the local server as
// postgres, where the bench makes a database of its own and drops it), with the database
// backends' CPU; then SQLite's two insert strategies (multi-row and per-row) on the same records:
//   STREAMS=8 STORE_LINES=50000 BATCH=1000 node bench/log-pipeline/run.mjs --store postgres
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { machine, mib, processStats } from '../lib/process-stats.mjs';
import { repoDir, startServer } from '../lib/server.mjs';
import { RSYSLOGD, startRsyslog } from './rsyslog.mjs';

const WRITERS = Number(process.env.WRITERS ?? 4);
const LINES = Number(process.env.LINES ?? 50_000);
const RATES = (process.env.RATES ?? '1000,5000').split(',').filter(Boolean).map(Number);
const RATE_S = Number(process.env.RATE_S ?? 15);
const SIDE_RATE = Number(process.env.SIDE_RATE ?? 10_000);
const SIDE_S = Number(process.env.SIDE_S ?? 15);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const execVersion = () => {
  const match = /rsyslogd\s+(\S+)/.exec(spawnSync(RSYSLOGD, ['-v'], { encoding: 'utf8' }).stdout ?? '');
  return (match ? match[1] : '').padEnd(9);
};
const percentile = (v, p) => (v.length ? v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))] : NaN);

const storeFlag = process.argv.indexOf('--store');
if (storeFlag >= 0) {
  if (process.argv[storeFlag + 1] !== 'postgres') {
    console.error('--store takes one value: postgres (the store stage on SQLite and PostgreSQL, side by side)');
    process.exit(2);
  }
  const { compareSqliteInserts, compareStores } = await import('./store-stage.mjs');
  const options = { streams: Number(process.env.STREAMS ?? 8), lines: Number(process.env.STORE_LINES ?? 50_000), batch: Number(process.env.BATCH ?? 1000), inFlight: 4 };
  const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`machine: ${machine()}, load average ${load()}`);
  await compareStores(process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', options, Number(process.env.ROUNDS ?? 3));
  await compareSqliteInserts({ lines: options.streams * options.lines, batch: options.batch });
  console.log(`load average at the end: ${load()}`);
  process.exit(0);
}

console.log(`log-pipeline: ${WRITERS} writers x ${LINES} lines, then rates ${RATES.join(', ')} lines/s for ${RATE_S} s`);
console.log(`machine: ${machine()}`);
const server = await startServer(process.env.SERVER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.SERVER_NODE_OPTIONS } : {});
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-pipeline-'));
const logDir = path.join(dir, 'logs');
fs.mkdirSync(logDir);
let agent;
try {
  const { node, config } = await server.api('POST', '/api/v1/nodes', { name: 'pipeline' });
  fs.writeFileSync(path.join(dir, 'node.key'), config.private_key, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'agent.json'), JSON.stringify({ server_url: server.agentUrl, node_id: node.id, key_path: path.join(dir, 'node.key'), state_dir: path.join(dir, 'state'), log_dir: logDir, metrics_interval_s: 5 }), { mode: 0o600 });
  agent = spawn('/usr/bin/python3', [path.join(repoDir, 'agent/dvic_agent.py'), '--config', path.join(dir, 'agent.json')], { stdio: 'ignore' });
  for (let i = 0; i < 100 && (await server.api('GET', `/api/v1/nodes/${node.id}`)).node.status !== 'online'; i++) await sleep(100);

  const stored = async () => (await server.api('GET', '/api/v1/demos')).demos.reduce((n, d) => n + d.line_count, 0);
  const writer = (demo, count, rate) => new Promise((resolve) => spawn('/usr/bin/python3', [path.join(repoDir, 'bench/log-pipeline/writer.py'), path.join(repoDir, 'libs/python'), demo, String(count), String(rate)],
    { env: { ...process.env, DVIC_LOG_DIR: logDir }, stdio: 'ignore' }).on('exit', resolve));

  // 1. throughput
  const a0 = processStats(agent.pid);
  const s0 = processStats(server.pid);
  const t0 = performance.now();
  const writing = Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(`burst-${i}`, LINES, 0)));
  let writtenAt = 0;
  void writing.then(() => { writtenAt = performance.now(); });
  const total = WRITERS * LINES;
  for (let i = 0; i < 6000 && (await stored()) < total; i++) await sleep(100);
  const seconds = (performance.now() - t0) / 1000;
  const a1 = processStats(agent.pid);
  const s1 = processStats(server.pid);
  console.log('');
  console.log(`throughput: ${total} lines stored in ${seconds.toFixed(1)} s = ${(total / seconds).toFixed(0)} lines/s end to end (writers done after ${((writtenAt - t0) / 1000).toFixed(1)} s)`);
  console.log(`  agent ${((100 * (a1.cpuSeconds - a0.cpuSeconds)) / seconds).toFixed(0)} % of a core, RSS ${mib(a1.rssBytes)} MiB; server ${((100 * (s1.cpuSeconds - s0.cpuSeconds)) / seconds).toFixed(0)} %, RSS ${mib(s1.rssBytes)} MiB`);

  // 2. latency at fixed rates, seen by a live-tail subscriber
  const cookie = await fetch(`${server.base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'bench-password' }) }).then((r) => r.headers.get('set-cookie').split(';')[0]);
  console.log('');
  console.log('rate (lines/s)  achieved  p50 write->live tail  p99      agent CPU  agent RSS  server CPU');
  for (const rate of RATES) {
    const demo = `rate-${rate}`;
    const latencies = [];
    const ws = new WebSocket(server.agentUrl.replace('/agent', '/live'), { headers: { cookie } });
    await new Promise((r) => ws.on('open', r));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type !== 'logs.records') return;
      const now = Date.now() * 1e6;
      for (const r of m.data.records) { const l = (now - Number(/t=(\d+)/.exec(r.message)[1])) / 1e6; latencies.push(l); if (process.env.DEBUG_LAG && l > 150) console.error(`lag ${l.toFixed(0)} ms ${r.message.slice(20, 40)}`); }
    });
    ws.send(JSON.stringify({ type: 'logs.subscribe', data: { demo } }));
    await sleep(300);
    const before = { a: processStats(agent.pid), s: processStats(server.pid), t: performance.now() };
    await writer(demo, rate * RATE_S, rate);
    const elapsed = (performance.now() - before.t) / 1000;
    const after = { a: processStats(agent.pid), s: processStats(server.pid) };
    for (let i = 0; i < 100 && latencies.length < rate * RATE_S; i++) await sleep(100);
    ws.close();
    latencies.sort((x, y) => x - y);
    console.log(`${String(rate).padEnd(16)}${String(Math.round(latencies.length / elapsed)).padEnd(10)}${`${percentile(latencies, 50).toFixed(0)} ms`.padEnd(21)}${`${percentile(latencies, 99).toFixed(0)} ms`.padEnd(9)}`
      + `${`${((100 * (after.a.cpuSeconds - before.a.cpuSeconds)) / elapsed).toFixed(1)} %`.padEnd(11)}${`${mib(after.a.rssBytes)} MiB`.padEnd(11)}${((100 * (after.s.cpuSeconds - before.s.cpuSeconds)) / elapsed).toFixed(1)} %`);
  }

  // 3. side by side with rsyslog, on the same files in the same window
  console.log('');
  if (!fs.existsSync(RSYSLOGD)) {
    console.log(`side by side with rsyslog: ${RSYSLOGD} not found (apt-get install rsyslog)`);
  } else {
    const rsyslog = await startRsyslog(path.join(dir, 'rsyslog'), path.join(logDir, 'dvic_log_*'));
    try {
      const total = WRITERS * Math.round((SIDE_RATE / WRITERS) * SIDE_S);
      const storedSide = async () => (await server.api('GET', '/api/v1/demos')).demos.filter((d) => d.name.startsWith('side-')).reduce((n, d) => n + d.line_count, 0);
      const before = { a: processStats(agent.pid), r: processStats(rsyslog.pid), t: performance.now() };
      await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(`side-${i}`, total / WRITERS, SIDE_RATE / WRITERS)));
      const wrote = (performance.now() - before.t) / 1000;
      for (let i = 0; i < 1200 && ((await storedSide()) < total || rsyslog.delivered() < total); i++) await sleep(100);
      const after = { a: processStats(agent.pid), r: processStats(rsyslog.pid) };
      const perTenK = (cpu, lines) => (lines ? ((100 * cpu) / lines) * 10_000 : NaN); // % of a core for a 10,000 lines/s stream
      const agentCost = perTenK(after.a.cpuSeconds - before.a.cpuSeconds, await storedSide());
      const rsyslogCost = perTenK(after.r.cpuSeconds - before.r.cpuSeconds, rsyslog.delivered());
      console.log(`side by side: ${WRITERS} writers, ${total} lines at ${(total / wrote).toFixed(0)} lines/s, the agent and rsyslogd tailing the same files`);
      console.log('                  lines delivered  CPU % of one core per 10,000 lines/s  RSS');
      console.log(`dvic agent        ${String(await storedSide()).padEnd(17)}${agentCost.toFixed(1).padEnd(38)}${mib(after.a.rssBytes)} MiB   (parses, ships, waits for the commit)`);
      console.log(`rsyslogd ${execVersion()}${String(rsyslog.delivered()).padEnd(17)}${rsyslogCost.toFixed(1).padEnd(38)}${mib(after.r.rssBytes)} MiB   (imfile -> omfwd TCP, raw lines)`);
      console.log(`ratio agent / rsyslog per line: ${(agentCost / rsyslogCost).toFixed(2)} (goal <= 1.00: ${agentCost <= rsyslogCost ? 'met' : 'MISSED'})`);
      console.log('published anchor: Fluent Bit 0.19 vCPU (19 % of one core) and 65 MB at 10,000 lines/s');
    } finally {
      await rsyslog.stop();
    }
  }
} finally {
  agent?.kill('SIGTERM');
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
