#!/usr/bin/env node
// bench/agents-load: N simulated agents (real handshake and Ed25519 signatures, in separate
// processes of at most PER_SIMULATOR agents each) connect to real servers and report hardware
// state every INTERVAL_S seconds. Prints connect rate, each server's CPU and RSS in steady state,
// messages/s handled, the simulators' CPU and the load average (the simulators share the machine).
//   AGENTS=10000 INTERVAL_S=5 DURATION_S=60 node bench/agents-load/run.mjs   (DEMOS_PER_AGENT=2: each runs crash-looping demos too)
// REPLICAS=2 (issue 17): first one server on SQLite, then REPLICAS replica processes on one
// PostgreSQL database and one NATS prefix of the bench's own (both removed at the end), the agents
// spread evenly over them; both printed side by side. One process holds at most its open-file
// hard limit of sockets, so the SQLite server gets min(AGENTS, limit - 1,000) agents (SQLITE_AGENTS).
//   REPLICAS=2 AGENTS=20000 INTERVAL_S=5 DURATION_S=60 node bench/agents-load/run.mjs
// Needs `npm run build`; REPLICAS > 1 needs PostgreSQL (PG_URL, default postgres@127.0.0.1:5432)
// and NATS with JetStream (NATS_URL, default 127.0.0.1:4222).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { raiseFileLimit } from '../lib/file-limit.mjs';
import { sampleBackends, startLab } from '../lib/lab.mjs';
import { machine, mib, processStats, sampleProcess } from '../lib/process-stats.mjs';
import { repoDir, startServer } from '../lib/server.mjs';

const AGENTS = Number(process.env.AGENTS ?? 10_000);
const INTERVAL_S = Number(process.env.INTERVAL_S ?? 5);
const DURATION_S = Number(process.env.DURATION_S ?? 60);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 200);
// Demos each simulated agent runs, one of them restarted at every report: a worst case of demos
// crash-looping (a new run every INTERVAL_S x DEMOS_PER_AGENT s each), not a quiet lab with demos.
// 0 keeps the figures comparable with earlier runs.
const DEMOS_PER_AGENT = Number(process.env.DEMOS_PER_AGENT ?? 0);
// A simulator ends by itself this long after its steady state would (the bench stops it before):
// long enough for the slowest connect phase seen (20,000 agents over replicas: over 3 min).
const SIMULATOR_SPARE_S = 900;
const REPLICAS = Number(process.env.REPLICAS ?? 1);
const PER_SIMULATOR = Number(process.env.PER_SIMULATOR ?? 5000);
const ENROLL_CONCURRENCY = Number(process.env.ENROLL_CONCURRENCY ?? 16);
const FILE_LIMIT = raiseFileLimit(process.pid);
const SQLITE_AGENTS = Number(process.env.SQLITE_AGENTS ?? (REPLICAS > 1 ? Math.min(AGENTS, Math.floor((FILE_LIMIT - 1000) / 1000) * 1000) : AGENTS));
const serverEnv = { DVIC_METRICS_INTERVAL_S: String(INTERVAL_S) };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

/** Runs fn(i) for i < count with at most `width` in flight; resolves with the results in order. */
async function inParallel(count, width, fn) {
  const results = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, count) }, async () => {
    while (next < count) { const i = next++; results[i] = await fn(i); }
  }));
  return results;
}

/** Enrolls `count` nodes over REST (ENROLL_CONCURRENCY at once, taking turns over the servers); their agent configs. */
async function enroll(servers, count) {
  const t0 = performance.now();
  const nodes = await inParallel(count, ENROLL_CONCURRENCY, async (i) => (await servers[i % servers.length].api('POST', '/api/v1/nodes', { name: `sim-${String(i).padStart(5, '0')}` })).config);
  const seconds = (performance.now() - t0) / 1000;
  console.log(`  enrolled ${count} nodes over REST (${ENROLL_CONCURRENCY} at once over ${servers.length} server(s)) in ${seconds.toFixed(1)} s: ${(count / seconds).toFixed(0)} /s`);
  return nodes;
}

/** One simulator process for `nodes` on `url`; resolves with it once all its agents tried to connect. */
async function startSimulator(nodes, url) {
  const nodesFile = path.join(os.tmpdir(), `dvic-bench-nodes-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(nodesFile, JSON.stringify(nodes), { mode: 0o600 });
  const child = spawn(process.execPath, [path.join(repoDir, 'bench/agents-load/simulate.mjs'), nodesFile, url, String(INTERVAL_S), String(DURATION_S + 5 + INTERVAL_S + SIMULATOR_SPARE_S), String(CONCURRENCY), String(DEMOS_PER_AGENT)], { stdio: ['ignore', 'pipe', 'inherit'] });
  raiseFileLimit(child.pid);
  const events = readline.createInterface({ input: child.stdout });
  try {
    const connected = await new Promise((resolve, reject) => {
      events.on('line', (line) => { const e = JSON.parse(line); if (e.event === 'connected') resolve(e); });
      child.on('exit', (code) => reject(new Error(`a simulator exited with ${code} before connecting`)));
    });
    return { child, connected };
  } finally {
    fs.rmSync(nodesFile, { force: true });
  }
}

/** The agents split evenly over the servers, each server's share over simulators of PER_SIMULATOR at most. */
async function connectAgents(servers, nodes) {
  const t0 = performance.now();
  const starts = [];
  servers.forEach((server, s) => {
    const share = nodes.slice(Math.floor((s * nodes.length) / servers.length), Math.floor(((s + 1) * nodes.length) / servers.length));
    for (let i = 0; i < share.length; i += PER_SIMULATOR) starts.push(startSimulator(share.slice(i, i + PER_SIMULATOR), server.agentUrl));
  });
  const simulators = await Promise.all(starts);
  const seconds = (performance.now() - t0) / 1000;
  const agents = simulators.reduce((n, s) => n + s.connected.agents, 0);
  const failed = simulators.reduce((n, s) => n + s.connected.failed, 0);
  console.log(`  connected ${agents} agents (${failed} failed) through ${simulators.length} simulator processes in ${seconds.toFixed(1)} s: ${(agents / seconds).toFixed(0)} handshakes/s`);
  return { simulators, agents };
}

/**
 * A server's counters; a 503 (a loaded machine can leave a replica's database pool busy past its
 * connect timeout) is tried again after 2 s, up to 5 times, and counted.
 */
let busyAnswers = 0;
async function stats(server) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await server.api('GET', '/api/v1/server/stats');
    } catch (err) {
      if (!/: 503 /.test(err.message) || attempt === 5) throw err;
      busyAnswers++;
      console.log(`  (a 503 from the server: ${err.message.slice(0, 160)}; trying again)`);
      await sleep(2000);
    }
  }
}

/** Each message type's count between two reads, per second, most frequent first. */
function perSecond(before = {}, after = {}, seconds) {
  return Object.entries(after).map(([type, n]) => [type, (n - (before[type] ?? 0)) / seconds]).filter(([, rate]) => rate > 0).sort((a, b) => b[1] - a[1]);
}

/** Steady state: every server, simulator and (on PostgreSQL) database backend over DURATION_S. */
async function steadyState(servers, simulators, database) {
  const before = await Promise.all(servers.map(stats));
  const t0 = performance.now();
  const load0 = load();
  const [serverSamples, simSamples, postgres] = await Promise.all([
    Promise.all(servers.map((s) => sampleProcess(s.pid, DURATION_S * 1000))),
    Promise.all(simulators.map((s) => sampleProcess(s.child.pid, DURATION_S * 1000))),
    database && sampleBackends(database, DURATION_S * 1000),
  ]);
  const after = await Promise.all(servers.map(stats));
  // The counters' window: from the first answer to the last (longer than DURATION_S when a read was tried again).
  const seconds = (performance.now() - t0) / 1000;
  return {
    load: `${load0} -> ${load()}`,
    servers: servers.map((s, i) => ({ ...serverSamples[i], handled: (after[i].messages_received - before[i].messages_received) / seconds, invalid: after[i].messages_invalid, online: after[i].agents_connected,
      byType: perSecond(before[i].messages_by_type, after[i].messages_by_type, seconds) })),
    simulatorCpu: simSamples.reduce((sum, s) => sum + s.cpuPercentOfCore, 0),
    simulatorRss: simSamples.reduce((sum, s) => sum + s.rssPeakBytes, 0),
    postgres,
  };
}

/** Enroll, connect, let every agent send once, measure, stop the simulators. */
async function measure(label, servers, agentCount, database) {
  console.log(`\n${label}: ${agentCount} agents over ${servers.length} server process(es) (load average ${load()})`);
  const idle = servers.map((s) => processStats(s.pid).rssBytes);
  const nodes = await enroll(servers, agentCount);
  const { simulators, agents } = await connectAgents(servers, nodes);
  try {
    await sleep((INTERVAL_S + 2) * 1000);
    return { label, agents, idle, ...(await steadyState(servers, simulators, database)) };
  } finally {
    for (const s of simulators) s.child.kill('SIGTERM');
    await Promise.all(simulators.map((s) => new Promise((r) => (s.child.exitCode !== null ? r() : s.child.once('exit', r)))));
  }
}

async function sqliteRun(agentCount) {
  const server = await startServer(serverEnv);
  try {
    return await measure('SQLite, 1 server', [server], agentCount);
  } finally {
    await server.stop();
  }
}

async function replicaRun(agentCount) {
  const lab = await startLab();
  const replicas = [];
  try {
    // One after the other: the first migrates the database and makes the admin user.
    for (let i = 1; i <= REPLICAS; i++) replicas.push(await startServer({ ...serverEnv, ...lab.replicaEnv(`bench-${i}`) }));
    return await measure(`PostgreSQL + NATS, ${REPLICAS} replicas`, replicas, agentCount, lab.database.name);
  } finally {
    const stopped = await Promise.all(replicas.map((r) => r.stop()));
    console.log(`  replicas stopped (SIGTERM) in ${stopped.map((t) => (t === null ? 'over 60 s: killed' : `${t.toFixed(1)} s`)).join(', ')}`);
    await lab.close();
  }
}

function print(result) {
  const expected = result.agents / INTERVAL_S;
  console.log(`\n${result.label}: ${result.agents} agents, load average (1, 5, 15 min) ${result.load}`);
  console.log('  process          CPU % of one core  RSS idle / mean / peak MiB  messages/s (expected)  agents online  invalid');
  result.servers.forEach((s, i) => {
    const name = result.servers.length > 1 ? `replica ${i + 1}` : 'server';
    console.log(`  ${name.padEnd(17)}${s.cpuPercentOfCore.toFixed(1).padEnd(19)}${`${mib(result.idle[i])} / ${mib(s.rssMeanBytes)} / ${mib(s.rssPeakBytes)}`.padEnd(28)}`
      + `${`${s.handled.toFixed(0)} (${(expected / result.servers.length).toFixed(0)})`.padEnd(23)}${String(s.online).padEnd(15)}${s.invalid}`);
  });
  result.servers.forEach((s, i) => console.log(`  ${result.servers.length > 1 ? `replica ${i + 1}` : 'server'} messages/s by type: ${s.byType.map(([type, rate]) => `${type} ${rate.toFixed(0)}`).join(', ')}`));
  console.log(`  ${'simulators'.padEnd(17)}${result.simulatorCpu.toFixed(1).padEnd(19)}${`peak ${mib(result.simulatorRss)} (all)`}`);
  if (result.postgres) console.log(`  ${'PostgreSQL'.padEnd(17)}${result.postgres.cpuPercentOfCore.toFixed(1).padEnd(19)}(${result.postgres.backends} backends of the bench's database over the window)`);
  const worst = Math.max(...result.servers.map((s) => s.cpuPercentOfCore));
  console.log(`  each server under one core: ${worst < 100 ? 'yes' : 'NO'} (highest ${worst.toFixed(1)} %)`);
}

console.log(`agents-load: ${AGENTS} agents${REPLICAS > 1 ? ` over ${REPLICAS} replicas, ${SQLITE_AGENTS} on the SQLite server` : ''}, ${INTERVAL_S} s interval, ${DURATION_S} s steady state${DEMOS_PER_AGENT ? `, ${DEMOS_PER_AGENT} demos per agent` : ''}`);
console.log(`config: at most ${PER_SIMULATOR} agents per simulator process, ${CONCURRENCY} handshakes in flight per simulator, open-file limit ${FILE_LIMIT}`);
console.log(`machine: ${machine()}, load average ${load()}`);
const results = [await sqliteRun(SQLITE_AGENTS)];
if (REPLICAS > 1) results.push(await replicaRun(AGENTS));
for (const result of results) print(result);
if (busyAnswers) console.log(`\n${busyAnswers} answers of 503 (storage_failed) to the bench's own requests: the database pool was busy past its connect timeout`);
process.exit(0);
