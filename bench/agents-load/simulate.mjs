// Child process of bench/agents-load: N simulated agents with real handshakes and signatures,
// each sending hardware.state every INTERVAL_S with a random phase. Reports on stdout as JSON lines.
// With DEMOS (6th argument) each also runs that many demos and restarts one of them every tick.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { connectAgent, sampleHardware } from '../../server/test/support/simulated-agent.mjs';

const [nodesFile, url, intervalS, durationS, concurrency, demosPerNode = '0'] = process.argv.slice(2);
const nodes = JSON.parse(fs.readFileSync(nodesFile, 'utf8'));
const report = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const agents = [];
let failed = 0;
const connectStart = performance.now();
let next = 0;
async function worker() {
  while (next < nodes.length) {
    const node = nodes[next++];
    const key = crypto.createPrivateKey(node.private_key);
    try {
      agents.push(await connectAgent({ url, nodeId: node.node_id, privateKeyPem: key }));
    } catch {
      failed++;
    }
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
const connectSeconds = (performance.now() - connectStart) / 1000;
report({ event: 'connected', agents: agents.length, failed, seconds: connectSeconds });

let sent = 0;
const host = sampleHardware().host;
const DEMOS = Number(demosPerNode);
const runToken = (agent, demo, run) => `r${agent}x${demo}x${run}`.padEnd(22, 'a');
const runs = agents.map(() => Array.from({ length: DEMOS }, () => 0));
const demoRun = (i, d, alive) => ({ token: runToken(i, d, runs[i][d]), demo: `demo-${d}`, pid: 1000 + d, alive, started_at: new Date().toISOString() });
agents.forEach((agent, i) => { if (DEMOS) agent.send({ type: 'demo.state', data: { full: true, demos: runs[i].map((_, d) => demoRun(i, d, true)) } }); });
let ticks = 0;
const timers = agents.map((agent, i) => setTimeout(() => {
  const tick = () => {
    if (DEMOS) {
      // One demo restarts: its run ends, a new one starts.
      const d = ticks++ % DEMOS;
      const ended = demoRun(i, d, false);
      runs[i][d]++;
      agent.send({ type: 'demo.state', data: { full: false, demos: [ended, demoRun(i, d, true)] } });
    }
    agent.send({ type: 'hardware.state', data: sampleHardware({ host, ts: Date.now(), processes: 100 + (i % 50), cpu: { total_pct: Math.random() * 100, per_core_pct: [Math.random() * 100, Math.random() * 100] } }) });
    sent++;
  };
  tick();
  timers[i] = setInterval(tick, Number(intervalS) * 1000);
}, Math.random() * Number(intervalS) * 1000));

const reportTimer = setInterval(() => report({ event: 'sent', sent }), 1000);
setTimeout(() => {
  for (const t of timers) clearInterval(t);
  clearInterval(reportTimer);
  report({ event: 'done', sent });
  for (const agent of agents) agent.ws.terminate();
  process.exit(0);
}, Number(durationS) * 1000);
