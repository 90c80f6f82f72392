#!/usr/bin/env node
// bench/onboarding: time from the request (POST /api/v1/enrollments) to the new node's first hello,
// per step, adding a real machine over SSH through a real source-node agent's tunnel. The machine
// is a Debian tree booted with systemd as PID 1 by systemd-nspawn (e2e/support/target-host.mjs;
// the tree is built once, about a minute, before the clock starts). Goal: <= 60 s on this machine.
//   RUNS=3 node bench/onboarding/run.mjs
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { machine } from '../lib/process-stats.mjs';
import { repoDir, startServer } from '../lib/server.mjs';
import { bootTarget, canBootTargets, debianTree, TARGET_PASSWORD, TARGET_USER } from '../../e2e/support/target-host.mjs';

const RUNS = Number(process.env.RUNS ?? 3);
const GOAL_S = 60;
const missing = canBootTargets();
if (missing) {
  console.error(`onboarding bench cannot run: ${missing}`);
  process.exit(1);
}

console.log(`onboarding: ${RUNS} machines added over SSH through a source node (goal <= ${GOAL_S} s each)`);
console.log(`machine: ${machine()}`);
debianTree();
const server = await startServer();
const agentDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-bench-source-'));
let source;
try {
  const { config } = await server.api('POST', '/api/v1/nodes', { name: 'source' });
  fs.writeFileSync(path.join(agentDir, 'agent.json'), JSON.stringify({ ...config, state_dir: path.join(agentDir, 'state'), log_dir: path.join(agentDir, 'logs'), system_logs: 'off', container_logs: false }), { mode: 0o600 });
  fs.mkdirSync(path.join(agentDir, 'logs'));
  source = spawn('/usr/bin/python3', [path.join(repoDir, 'agent/dvic_agent.py'), '--config', path.join(agentDir, 'agent.json')], { stdio: 'ignore' });
  await until(async () => (await server.api('GET', `/api/v1/nodes/${config.node_id}`)).node.status === 'online', 30_000, 'the source node online');

  const totals = [];
  const perStep = {};
  for (let run = 0; run < RUNS; run++) {
    const target = await bootTarget();
    try {
      // The host key is confirmed up front (as --accept-host-key does), so no person is timed.
      const probe = await server.api('POST', '/api/v1/enrollments', body(run, target.port));
      const shown = await settled(probe.enrollment.id);
      const started = performance.now();
      const { enrollment } = await server.api('POST', '/api/v1/enrollments', { ...body(run, target.port), accept_host_key: shown.host_key_fingerprint });
      const done = await settled(enrollment.id);
      const seconds = (performance.now() - started) / 1000;
      if (done.state !== 'succeeded') throw new Error(`run ${run}: ${done.state} at ${done.error?.step}: ${done.error?.message}`);
      totals.push(seconds);
      for (const s of done.steps) (perStep[s.name] ??= []).push(s.duration_ms);
      console.log(`run ${run + 1}: request to first hello ${seconds.toFixed(2)} s`);
    } finally {
      await target.stop();
    }
  }
  console.log('\nper step (median ms):');
  for (const [name, values] of Object.entries(perStep)) console.log(`  ${name.padEnd(14)} ${median(values)}`);
  const med = median(totals);
  console.log(`\nrequest to first hello: median ${med.toFixed(2)} s, max ${Math.max(...totals).toFixed(2)} s (goal <= ${GOAL_S} s: ${med <= GOAL_S ? 'met' : 'NOT met'}; ratio to goal ${(med / GOAL_S).toFixed(3)})`);
} finally {
  source?.kill('SIGTERM');
  await server.stop?.();
  fs.rmSync(agentDir, { recursive: true, force: true });
}
process.exit(0);

function body(run, port) {
  return { name: `bench-${run}`, host: '127.0.0.1', port, username: TARGET_USER, password: TARGET_PASSWORD, via: 'source' };
}

async function settled(id) {
  let enrollment;
  await until(async () => {
    ({ enrollment } = await server.api('GET', `/api/v1/enrollments/${id}`));
    return enrollment.state !== 'running';
  }, 180_000, `enrollment ${id}`);
  return enrollment;
}

async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
