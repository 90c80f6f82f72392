#!/usr/bin/env node
// bench/agent-footprint: the DVIC agent's RSS and CPU while it reports every second to a real
// server, side by side, in the same time window, with Debian's prometheus-node-exporter scraped
// once a second. Goals: agent RSS <= 0.8 x node_exporter's, agent CPU <= 0.5 x node_exporter's.
// The agent runs with its default config (system logs auto, containers followed) but a log
// directory of its own.
//   DURATION_S=60 node bench/agent-footprint/run.mjs
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { machine, mib, sampleProcess } from '../lib/process-stats.mjs';
import { freePort, repoDir, startServer } from '../lib/server.mjs';

const DURATION_S = Number(process.env.DURATION_S ?? 60);
const NODE_EXPORTER = process.env.NODE_EXPORTER ?? '/usr/bin/prometheus-node-exporter';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

console.log(`agent-footprint: ${DURATION_S} s at a 1-s interval`);
console.log(`machine: ${machine()}`);
const server = await startServer();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-footprint-'));
const children = [];
try {
  const { node, config } = await server.api('POST', '/api/v1/nodes', { name: 'footprint' });
  const keyPath = path.join(dir, 'node.key');
  fs.writeFileSync(keyPath, config.private_key, { mode: 0o600 });
  const configPath = path.join(dir, 'agent.json');
  fs.mkdirSync(path.join(dir, 'logs'));
  fs.writeFileSync(configPath, JSON.stringify({
    server_url: server.agentUrl, node_id: node.id, key_path: keyPath, metrics_interval_s: 1, state_dir: path.join(dir, 'state'), log_dir: path.join(dir, 'logs'),
  }), { mode: 0o600 });
  const agent = spawn('/usr/bin/python3', [path.join(repoDir, 'agent/dvic_agent.py'), '--config', configPath], { stdio: 'ignore' });
  children.push(agent);

  let exporter;
  let scrapes = 0;
  let scraping = false;
  if (fs.existsSync(NODE_EXPORTER)) {
    const port = await freePort();
    exporter = spawn(NODE_EXPORTER, [`--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    children.push(exporter);
    scraping = true;
    (async () => {
      await sleep(500);
      while (scraping) {
        const started = performance.now();
        try {
          await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          scrapes++;
        } catch { /* not up yet */ }
        await sleep(Math.max(0, 1000 - (performance.now() - started)));
      }
    })();
  } else {
    console.log(`(${NODE_EXPORTER} not found: apt-get install prometheus-node-exporter for the reference figures)`);
  }

  // Warm-up: both processes have loaded what they need and served a few rounds.
  await sleep(3000);
  const [a, e] = await Promise.all([
    sampleProcess(agent.pid, DURATION_S * 1000),
    exporter ? sampleProcess(exporter.pid, DURATION_S * 1000) : Promise.resolve(null),
  ]);
  scraping = false;
  const { node: reported } = await server.api('GET', `/api/v1/nodes/${node.id}`);

  console.log('');
  console.log('                        RSS mean   RSS peak   CPU (% of one core)');
  console.log(`dvic agent              ${mib(a.rssMeanBytes).padStart(5)} MiB  ${mib(a.rssPeakBytes).padStart(5)} MiB  ${a.cpuPercentOfCore.toFixed(2)}`);
  if (e) {
    console.log(`prometheus-node-export  ${mib(e.rssMeanBytes).padStart(5)} MiB  ${mib(e.rssPeakBytes).padStart(5)} MiB  ${e.cpuPercentOfCore.toFixed(2)}   (${scrapes} scrapes)`);
    console.log('');
    const rss = a.rssMeanBytes / e.rssMeanBytes;
    const cpu = a.cpuPercentOfCore / e.cpuPercentOfCore;
    console.log(`ratio agent / node_exporter: RSS ${rss.toFixed(2)} (goal <= 0.80: ${rss <= 0.8 ? 'met' : 'MISSED'}), CPU ${cpu.toFixed(2)} (goal <= 0.50: ${cpu <= 0.5 ? 'met' : 'MISSED'})`);
  }
  console.log(`node online: ${reported.status}, last report ${Date.now() - reported.hardware_at} ms ago`);
} finally {
  for (const child of children) child.kill('SIGTERM');
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
