#!/usr/bin/env node
// bench/node-churn: the in-memory work of many nodes going offline and coming back (a server's
// stop, its restart with every agent reconnecting) when each runs demos: the real node registry,
// demo registry and demo catalog of server/dist, with repositories that store nothing (the
// database's share is measured by bench/agents-load). Also what the alert engine reads per node
// coming online: that node's demos (catalog.list({ nodeId })). Goal: linear in nodes, under 1 s
// for 10,000 nodes with 2 demos each; before, each status change looked at every demo of the lab.
//   NODES=10000 DEMOS_PER_NODE=2 node bench/node-churn/run.mjs   (needs npm run build)
// DIST=<another checkout>/server/dist measures that build instead (the previous one, to compare).
import path from 'node:path';
import { machine } from '../lib/process-stats.mjs';
import { repoDir } from '../lib/server.mjs';

const NODES = Number(process.env.NODES ?? 10_000);
const DEMOS_PER_NODE = Number(process.env.DEMOS_PER_NODE ?? 2);
const dist = process.env.DIST ?? path.join(repoDir, 'server/dist');
const { DemoRegistry } = await import(path.join(dist, 'live/demo-registry.js'));
const { NodeRegistry } = await import(path.join(dist, 'live/node-registry.js'));
const { DemoCatalog } = await import(path.join(dist, 'live/demo-catalog.js'));

const nothing = async () => undefined;
const id = (i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const nodes = Array.from({ length: NODES }, (_, i) => ({
  id: id(i), name: `node-${i}`, labels: {}, agentConfig: {}, publicKey: '', isLocal: false, createdAt: 0, revokedAt: null,
  status: 'online', statusSince: 0, lastSeen: 0, agentVersion: '1', host: null, hardware: null, hardwareAt: null,
}));
const host = { hostname: 'bench', os: 'linux', kernel: '6', arch: 'x86_64', cpu_model: 'cpu', cpu_count: 2, memory_total_bytes: 1 };

const runs = await new DemoRegistry({ all: async () => [], upsert: nothing, forget: nothing, countLines: nothing }).load();
const registry = await new NodeRegistry({ all: async () => nodes, updateStatus: nothing, flushLiveState: nothing }, runs, 60_000).load({ keepStatus: true });
const catalog = await new DemoCatalog(runs, registry, { all: async () => [], expectations: async () => [], save: nothing, delete: nothing }).load();
nodes.forEach((node, i) => {
  const demos = Array.from({ length: DEMOS_PER_NODE }, (_, d) => ({ token: `n${i}d${d}`.padEnd(22, 'x'), demo: `demo-${d}`, pid: 100 + d, alive: true }));
  runs.applyState(node.id, true, demos);
});

const timed = (what, fn) => {
  const start = performance.now();
  fn();
  const seconds = (performance.now() - start) / 1000;
  console.log(`  ${what.padEnd(52)} ${seconds.toFixed(2)} s (${((seconds * 1e6) / NODES).toFixed(1)} µs per node)`);
};
console.log(`node-churn: ${NODES} nodes, ${catalog.list().length} demos`);
console.log(`machine: ${machine()}; build: ${dist}`);
timed('every node offline (a stop)', () => { for (const n of nodes) registry.markOffline(n.id, 'bench'); });
timed('every node online again (agents reconnecting)', () => { for (const n of nodes) registry.markOnline(n.id, { agentVersion: '1', host }); });
timed("each node's demos, as the alert engine reads them", () => { for (const n of nodes) catalog.list({ nodeId: n.id }); });
// What the alert engine read for each node coming online before (every demo's view, then kept
// that node's): measured on a few calls, extrapolated to every node.
const calls = 10;
const start = performance.now();
for (let i = 0; i < calls; i++) catalog.list();
const wholeMs = (performance.now() - start) / calls;
console.log(`  the whole catalog, as the engine read it per node before: ${wholeMs.toFixed(1)} ms a call, ${((wholeMs * NODES) / 1000).toFixed(0)} s for ${NODES} nodes (extrapolated)`);
