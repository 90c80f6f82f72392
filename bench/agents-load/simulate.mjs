// Child process of bench/agents-load: N simulated agents with real handshakes and signatures,
// each sending hardware.state every INTERVAL_S with a random phase. Reports on stdout as JSON lines.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { connectAgent, sampleHardware } from '../../server/test/support/simulated-agent.mjs';

const [nodesFile, url, intervalS, durationS, concurrency] = process.argv.slice(2);
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
const timers = agents.map((agent, i) => setTimeout(() => {
  const tick = () => {
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
