#!/usr/bin/env node
// bench/agents-load: N simulated agents (real handshake and Ed25519 signatures, in a separate
// process) connect to a real server and report hardware state every INTERVAL_S seconds.
// Prints connect rate, server CPU and RSS in steady state, and messages/s handled.
//   AGENTS=10000 INTERVAL_S=5 DURATION_S=60 node bench/agents-load/run.mjs
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { machine, mib, processStats, sampleProcess } from '../lib/process-stats.mjs';
import { repoDir, startServer } from '../lib/server.mjs';

const AGENTS = Number(process.env.AGENTS ?? 10_000);
const INTERVAL_S = Number(process.env.INTERVAL_S ?? 5);
const DURATION_S = Number(process.env.DURATION_S ?? 60);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 200);

console.log(`agents-load: ${AGENTS} agents, ${INTERVAL_S} s interval, ${DURATION_S} s steady state`);
console.log(`machine: ${machine()}`);
const server = await startServer({ DVIC_METRICS_INTERVAL_S: String(INTERVAL_S) });
try {
  const idle = processStats(server.pid);
  const enrollStart = performance.now();
  const nodes = [];
  for (let i = 0; i < AGENTS; i++) {
    const { config } = await server.api('POST', '/api/v1/nodes', { name: `sim-${String(i).padStart(5, '0')}` });
    nodes.push(config);
  }
  console.log(`enrolled ${AGENTS} nodes through the API in ${((performance.now() - enrollStart) / 1000).toFixed(1)} s`);
  const nodesFile = path.join(os.tmpdir(), `dvic-bench-nodes-${process.pid}.json`);
  fs.writeFileSync(nodesFile, JSON.stringify(nodes), { mode: 0o600 });

  const sim = spawn(process.execPath, [path.join(repoDir, 'bench/agents-load/simulate.mjs'), nodesFile, server.agentUrl, String(INTERVAL_S), String(DURATION_S + 5 + INTERVAL_S), String(CONCURRENCY)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const events = readline.createInterface({ input: sim.stdout });
  const connected = await new Promise((resolve) => events.on('line', (line) => { const e = JSON.parse(line); if (e.event === 'connected') resolve(e); }));
  fs.rmSync(nodesFile);
  console.log(`connected ${connected.agents} agents (${connected.failed} failed) in ${connected.seconds.toFixed(1)} s: ${(connected.agents / connected.seconds).toFixed(0)} handshakes/s`);

  // Let every agent send at least once before measuring steady state.
  await new Promise((r) => setTimeout(r, (INTERVAL_S + 2) * 1000));
  const before = await server.api('GET', '/api/v1/server/stats');
  const serverSample = sampleProcess(server.pid, DURATION_S * 1000);
  const simSample = sampleProcess(sim.pid, DURATION_S * 1000);
  const [srv, simStats] = await Promise.all([serverSample, simSample]);
  const after = await server.api('GET', '/api/v1/server/stats');
  const handled = after.messages_received - before.messages_received;
  sim.kill('SIGTERM');

  console.log('');
  console.log(`server idle RSS:                 ${mib(idle.rssBytes)} MiB`);
  console.log(`server RSS, steady (mean/peak):  ${mib(srv.rssMeanBytes)} / ${mib(srv.rssPeakBytes)} MiB`);
  console.log(`server CPU, steady:              ${srv.cpuPercentOfCore.toFixed(1)} % of one core (goal: < 100 %)`);
  console.log(`messages handled:                ${(handled / srv.seconds).toFixed(0)} /s (expected ${(connected.agents / INTERVAL_S).toFixed(0)} /s), invalid: ${after.messages_invalid}`);
  console.log(`agents online at the end:        ${after.agents_connected}`);
  console.log(`simulator CPU / RSS:             ${simStats.cpuPercentOfCore.toFixed(1)} % / ${mib(simStats.rssPeakBytes)} MiB`);
} finally {
  await server.stop();
}
process.exit(0);
