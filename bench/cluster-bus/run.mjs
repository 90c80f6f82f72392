#!/usr/bin/env node
// bench/cluster-bus: the scale-out groundwork (server/src/cluster) against the real NATS JetStream
// (127.0.0.1:4222) and PostgreSQL (127.0.0.1:5432), for sizing (docs/scale-out.md):
// 1. node holders: NODES claims by one replica, then one renewal of them all (what every replica
//    does every third of the lease); CPU of the replica process and of nats-server per renewal
//    round, and as % of one core at LEASE_S (a renewal every LEASE_S / 3 s).
// 2. routed requests B -> A -> B (NATS request/reply): p50/p99 one at a time, then requests/s with
//    CONCURRENCY in flight.
// 3. live-event fan-out: EVENTS events published by A (each stored by JetStream) until all are
//    received by B; events/s.
// 4. leader lease: time from an orderly stop of the leader to the follower's election (CHECK_MS).
//   NODES=20000 LEASE_S=30 CONCURRENCY=64 EVENTS=20000 CHECK_MS=500 node bench/cluster-bus/run.mjs
// Needs `npm run build` (it runs server/dist). Everything it makes has a prefix of its own and is removed.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { connect } from 'nats';
import pg from 'pg';
import { machine, processStats } from '../lib/process-stats.mjs';
import { repoDir } from '../lib/server.mjs';

const dist = (file) => import(path.join(repoDir, 'server/dist/cluster', file));
const { clusterNames } = await dist('cluster-names.js');
const { NodeHolders } = await dist('node-holders.js');
const { ReplicaRouter } = await dist('replica-router.js');
const { EventFanout } = await dist('event-fanout.js');
const { LeaderLease } = await dist('leader-lease.js');

const NODES = Number(process.env.NODES ?? 20_000);
const LEASE_S = Number(process.env.LEASE_S ?? 30);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const EVENTS = Number(process.env.EVENTS ?? 20_000);
const CHECK_MS = Number(process.env.CHECK_MS ?? 500);
const NATS_URL = 'nats://127.0.0.1:4222';
const PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

const names = clusterNames(`bench${crypto.randomBytes(4).toString('hex')}`);
const natsPid = Number(execFileSync('pidof', ['-s', 'nats-server'], { encoding: 'utf8' }).trim());
const cpuSeconds = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Runs work, returns wall seconds and the CPU seconds of this process and of nats-server. */
async function measure(work) {
  const [t0, c0, n0] = [performance.now(), cpuSeconds(), processStats(natsPid).cpuSeconds];
  await work();
  return { wall: (performance.now() - t0) / 1000, cpu: cpuSeconds() - c0, natsCpu: processStats(natsPid).cpuSeconds - n0 };
}

/** Runs fn(i) for i < count with at most `width` in flight. */
async function inParallel(count, width, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, count) }, async () => { while (next < count) await fn(next++); }));
}

console.log(`cluster-bus: ${NODES} nodes, lease ${LEASE_S} s, ${CONCURRENCY} requests in flight, ${EVENTS} events`);
console.log(`machine: ${machine()}`);
const [ncA, ncB] = [await connect({ servers: NATS_URL, name: 'bench-a' }), await connect({ servers: NATS_URL, name: 'bench-b' })];
const a = await NodeHolders.open(ncA, names, { replica: 'bench-a', leaseMs: LEASE_S * 1000 });
const b = await NodeHolders.open(ncB, names, { replica: 'bench-b', leaseMs: LEASE_S * 1000 });
try {
  // 1. node holders
  const nodes = Array.from({ length: NODES }, () => crypto.randomUUID());
  const claimed = await measure(() => inParallel(NODES, 256, (i) => a.claim(nodes[i])));
  const renewed = await measure(() => a.renew());
  const roundsPerSecond = 3 / LEASE_S;
  console.log(`holders: ${NODES} claims in ${claimed.wall.toFixed(2)} s (${Math.round(NODES / claimed.wall)}/s); one renewal of all: ${renewed.wall.toFixed(2)} s,`
    + ` replica ${renewed.cpu.toFixed(2)} CPU s + nats-server ${renewed.natsCpu.toFixed(2)} CPU s`);
  console.log(`holders at a ${LEASE_S} s lease: replica ${(100 * renewed.cpu * roundsPerSecond).toFixed(1)} % of a core, nats-server ${(100 * renewed.natsCpu * roundsPerSecond).toFixed(1)} % of a core`);

  // 2. routed requests
  const handler = async (request) => ({ node_id: request.node_id });
  const routerA = new ReplicaRouter(ncA, names, a, handler, { replica: 'bench-a', timeoutMs: 5000 });
  const routerB = new ReplicaRouter(ncB, names, b, handler, { replica: 'bench-b', timeoutMs: 5000 });
  routerA.start();
  await ncA.flush();
  const latencies = [];
  for (let i = 0; i < 2000; i++) {
    const t = performance.now();
    await routerB.request(nodes[i % NODES], 'exec', { command: 'uptime' });
    latencies.push(performance.now() - t);
  }
  latencies.sort((x, y) => x - y);
  const routed = await measure(() => inParallel(20_000, CONCURRENCY, (i) => routerB.request(nodes[i % NODES], 'exec', { command: 'uptime' })));
  console.log(`routing B -> A: p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms one at a time;`
    + ` ${Math.round(20_000 / routed.wall)} requests/s with ${CONCURRENCY} in flight (both replicas in this process: ${(100 * routed.cpu / routed.wall).toFixed(0)} % of a core)`);
  await routerA.stop();

  // 3. fan-out
  let received = 0;
  let allReceived;
  const done = new Promise((resolve) => { allReceived = resolve; });
  const fanA = await EventFanout.open(ncA, names, { replica: 'bench-a', onEvent: () => {} });
  const fanB = await EventFanout.open(ncB, names, { replica: 'bench-b', onEvent: () => { if (++received === EVENTS) allReceived(); } });
  for (const fanout of [fanA, fanB]) fanout.allListening(); // onEvent is their one listener: nothing to hold
  const nodeId = crypto.randomUUID();
  const fanned = await measure(async () => {
    await inParallel(EVENTS, CONCURRENCY, (i) => fanA.publish({ type: 'node.status', data: { node_id: nodeId, status: 'online', since: i } }));
    await done;
  });
  console.log(`fan-out A -> B: ${EVENTS} events in ${fanned.wall.toFixed(2)} s (${Math.round(EVENTS / fanned.wall)} events/s), nats-server ${(100 * fanned.natsCpu / fanned.wall).toFixed(0)} % of a core`);
  fanA.stop();
  fanB.stop();

  // 4. leader lease handover
  const database = `dvic_bench_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  try {
    const url = `postgres://postgres@127.0.0.1:5432/${database}`;
    let electedAt = 0;
    const first = new LeaderLease({ databaseUrl: url, name: 'bench', checkMs: CHECK_MS });
    first.start();
    while (!first.isLeader()) await new Promise((r) => setTimeout(r, 10));
    const second = new LeaderLease({ databaseUrl: url, name: 'bench', checkMs: CHECK_MS, onElected: () => { electedAt = performance.now(); } });
    second.start();
    await new Promise((r) => setTimeout(r, 2 * CHECK_MS));
    const stoppedAt = performance.now();
    await first.stop();
    while (!electedAt) await new Promise((r) => setTimeout(r, 5));
    console.log(`leader lease: handed over ${(electedAt - stoppedAt).toFixed(0)} ms after an orderly stop (check every ${CHECK_MS} ms)`);
    await second.stop();
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  }
} finally {
  a.close();
  b.close();
  const jsm = await ncA.jetstreamManager();
  for (const stream of [`KV_${names.holdersBucket}`, names.eventsStream]) await jsm.streams.delete(stream).catch(() => false);
  await ncA.close();
  await ncB.close();
}
