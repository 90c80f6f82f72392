#!/usr/bin/env node
// bench/deploy: one artifact to 10 real agents on loopback, at 10 MB and at 100 MB. Prints the
// aggregate and per-node throughput, and the peak RSS of the server and of the agents during each
// deploy, against a reference: the same bytes to as many plain HTTP clients (the download route).
// Both stream (the server reads chunks as agents ask, an agent writes them as they come),
// so the RSS must not grow with the file size. As root each agent runs in a mount namespace of its
// own so that one destination path is a different directory per node; otherwise each node gets a
// deployment of its own to its own path (the same load on the server).
//   AGENTS=10 SIZES_MB=10,100 node bench/deploy/run.mjs
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { machine, mib, processStats } from '../lib/process-stats.mjs';
import { repoDir, startServer } from '../lib/server.mjs';

const AGENTS = Number(process.env.AGENTS ?? 10);
const SIZES_MB = (process.env.SIZES_MB ?? '10,100').split(',').map(Number);
const MB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

console.log(`deploy: ${SIZES_MB.join(' MB and ')} MB to ${AGENTS} agents on loopback (${isRoot ? 'one deployment, a mount namespace per agent' : 'one deployment per agent'})`);
console.log(`machine: ${machine()}`);
const server = await startServer({ DVIC_DEPLOY_MAX_PARALLEL: String(AGENTS), DVIC_LOG_LEVEL: 'warn' });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-bench-deploy-'));
const shared = path.join(work, 'shared');
fs.mkdirSync(shared);
const agents = [];

function startAgent(i) {
  return server.api('POST', '/api/v1/nodes', { name: `bench-${i}`, labels: { bench: 'deploy' } }).then(({ node, config }) => {
    const dir = path.join(work, `agent-${i}`);
    const own = path.join(dir, 'root');
    fs.mkdirSync(own, { recursive: true });
    fs.writeFileSync(path.join(dir, 'node.key'), config.private_key, { mode: 0o600 });
    const configPath = path.join(dir, 'agent.json');
    fs.writeFileSync(configPath, JSON.stringify({
      server_url: server.agentUrl, node_id: node.id, key_path: path.join(dir, 'node.key'), state_dir: path.join(dir, 'state'),
      log_dir: path.join(dir, 'logs'), system_logs: 'off', container_logs: false, metrics_interval_s: 30, deploy_roots: [isRoot ? shared : own],
    }), { mode: 0o600 });
    fs.mkdirSync(path.join(dir, 'logs'));
    const python = ['/usr/bin/python3', path.join(repoDir, 'agent/dvic_agent.py'), '--config', configPath];
    const argv = isRoot ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"', 'sh', own, shared, ...python] : python;
    const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
    agents.push({ id: node.id, own, child });
  });
}

/** A file of random bytes written in 1 MB pieces. */
function randomFile(megabytes) {
  const file = path.join(work, `artifact-${megabytes}`);
  const fd = fs.openSync(file, 'w');
  for (let i = 0; i < megabytes; i++) fs.writeSync(fd, crypto.randomBytes(MB));
  fs.closeSync(fd);
  return file;
}

async function upload(file, version) {
  const res = await fetch(`${server.base}/api/v1/artifacts?name=bench&version=${version}`, {
    method: 'POST', headers: { cookie: server.cookie, 'content-type': 'application/octet-stream', 'content-length': String(fs.statSync(file).size) },
    body: fs.createReadStream(file), duplex: 'half',
  });
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${await res.text()}`);
  return (await res.json()).artifact;
}

/** Reference: the same bytes to AGENTS plain HTTP clients at once (GET .../download, written to disk). */
async function httpReference(artifact) {
  const started = performance.now();
  await Promise.all(agents.map(async (a, i) => {
    const res = await fetch(`${server.base}/api/v1/artifacts/${artifact.id}/download`, { headers: { cookie: server.cookie } });
    const out = fs.createWriteStream(path.join(a.own, `reference-${i}`));
    for await (const chunk of res.body) if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
    await new Promise((r) => out.end(r));
    fs.rmSync(path.join(a.own, `reference-${i}`));
  }));
  return (performance.now() - started) / 1000;
}

async function deployAll(artifact, megabytes) {
  const body = (targets, p) => ({ artifact: artifact.id, targets, path: p, max_parallel: AGENTS });
  const ids = isRoot
    ? [(await server.api('POST', '/api/v1/deployments', body({ label: 'bench=deploy' }, `${shared}/bench-${megabytes}.bin`))).id]
    : await Promise.all(agents.map(async (a) => (await server.api('POST', '/api/v1/deployments', body({ nodes: [a.id] }, `${a.own}/bench-${megabytes}.bin`))).id));
  const peak = { server: processStats(server.pid).rssBytes, agent: 0 };
  const started = performance.now();
  for (;;) {
    peak.server = Math.max(peak.server, processStats(server.pid).rssBytes);
    for (const a of agents) peak.agent = Math.max(peak.agent, processStats(a.child.pid).rssBytes);
    const views = await Promise.all(ids.map(async (id) => (await server.api('GET', `/api/v1/deployments/${id}`)).deployment));
    if (views.every((v) => !['running', 'paused'].includes(v.state))) {
      const seconds = (performance.now() - started) / 1000;
      const failed = views.flatMap((v) => v.nodes).filter((n) => n.result !== 'done');
      if (failed.length) throw new Error(`nodes failed: ${JSON.stringify(failed)}`);
      return { seconds, peak };
    }
    await sleep(100);
  }
}

try {
  await Promise.all(Array.from({ length: AGENTS }, (_, i) => startAgent(i)));
  for (;;) {
    const { nodes } = await server.api('GET', '/api/v1/nodes');
    if (nodes.filter((n) => n.status === 'online').length === AGENTS) break;
    await sleep(200);
  }
  await sleep(1000);
  const idle = { server: processStats(server.pid).rssBytes, agent: Math.max(...agents.map((a) => processStats(a.child.pid).rssBytes)) };
  console.log(`idle: server RSS ${mib(idle.server)} MiB, agent RSS ${mib(idle.agent)} MiB (largest)`);
  console.log('size      seconds  total MB/s  per node MB/s  server peak RSS  agent peak RSS  HTTP reference MB/s  ratio');
  const rows = [];
  for (const megabytes of SIZES_MB) {
    const file = randomFile(megabytes);
    const artifact = await upload(file, String(megabytes));
    const { seconds, peak } = await deployAll(artifact, megabytes);
    const reference = (megabytes * AGENTS) / (await httpReference(artifact));
    const rate = (megabytes * AGENTS) / seconds;
    rows.push({ megabytes, peak });
    console.log(`${String(megabytes).padStart(4)} MB  ${seconds.toFixed(2).padStart(7)}  ${rate.toFixed(1).padStart(10)}  ${(megabytes / seconds).toFixed(1).padStart(13)}  ${mib(peak.server).padStart(11)} MiB  ${mib(peak.agent).padStart(10)} MiB  ${reference.toFixed(1).padStart(19)}  ${(rate / reference).toFixed(2).padStart(5)}`);
    fs.rmSync(file);
  }
  if (rows.length >= 2) {
    const [small, large] = [rows[0], rows.at(-1)];
    console.log(`RSS growth from ${small.megabytes} MB to ${large.megabytes} MB: server ${mib(large.peak.server - small.peak.server)} MiB, agent ${mib(large.peak.agent - small.peak.agent)} MiB (bounded: it does not scale with the file)`);
  }
} finally {
  for (const a of agents) a.child.kill('SIGTERM');
  await server.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
