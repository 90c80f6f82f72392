#!/usr/bin/env node
// bench/keepalive: wrk POSTs keepalives to DEVICES devices on loopback for DURATION_S seconds.
// Prints requests/s, p50/p99 latency and server CPU, then checks that every answered keepalive
// is stored (writes are batched: nothing may be lost). Goal: >= 20,000/s, p99 < 20 ms.
//   DEVICES=1000 DURATION_S=10 CONNECTIONS=64 node bench/keepalive/run.mjs
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { machine, sampleProcess } from '../lib/process-stats.mjs';
import { repoDir, startServer } from '../lib/server.mjs';

const DEVICES = Number(process.env.DEVICES ?? 1000);
const DURATION_S = Number(process.env.DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 64);
const THREADS = Number(process.env.THREADS ?? 1);
const run = promisify(execFile);

/** wrk's "1.23ms" / "456.00us" / "1.02s" in milliseconds. */
function ms(text) {
  const [, value, unit] = /([\d.]+)(us|ms|s)/.exec(text);
  return Number(value) * (unit === 'us' ? 0.001 : unit === 's' ? 1000 : 1);
}

console.log(`keepalive: ${DEVICES} devices, ${DURATION_S} s, wrk ${THREADS} thread(s) ${CONNECTIONS} connections`);
console.log(`machine: ${machine()}`);
const server = await startServer();
const tokensFile = path.join(os.tmpdir(), `dvic-bench-tokens-${process.pid}`);
try {
  const tokens = [];
  for (let i = 0; i < DEVICES; i++) tokens.push((await server.api('POST', '/api/v1/devices', { name: `bench-${String(i).padStart(4, '0')}`, period_s: 3600 })).token);
  fs.writeFileSync(tokensFile, `${tokens.join('\n')}\n`, { mode: 0o600 });
  // A short warm-up (JIT, connection setup), not measured.
  await run('wrk', ['-t1', '-c8', '-d1s', '-s', path.join(repoDir, 'bench/keepalive/keepalive.lua'), server.base], { env: { ...process.env, DVIC_BENCH_TOKENS: tokensFile } });

  const cpu = sampleProcess(server.pid, DURATION_S * 1000);
  const { stdout } = await run('wrk', [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${DURATION_S}s`, '--latency', '-s', path.join(repoDir, 'bench/keepalive/keepalive.lua'), server.base],
    { env: { ...process.env, DVIC_BENCH_TOKENS: tokensFile } });
  const srv = await cpu;
  const requests = Number(/(\d+) requests in/.exec(stdout)[1]);
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0) + Number(/Socket errors: .*?(\d+) timeout/.exec(stdout)?.[1] ?? 0);
  const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)[1]);
  const p50 = ms(/\s50%\s+(\S+)/.exec(stdout)[1]);
  const p99 = ms(/\s99%\s+(\S+)/.exec(stdout)[1]);

  // Reference: the same server answering GET /healthz ({"ok": true}, no work) with the same wrk settings:
  // the floor of the HTTP stack on this machine right now.
  const reference = await run('wrk', [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${Math.min(5, DURATION_S)}s`, `${server.base}/healthz`]);
  const referencePerSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(reference.stdout)[1]);

  // Every answered keepalive must be in the database once the batches are written.
  const expected = requests + (await countWarmup());
  const db = new Database(path.join(server.dataDir, 'dvic.sqlite'), { readonly: true, fileMustExist: true });
  let stored = 0;
  let counted = 0;
  for (let waited = 0; waited < 5000 && stored < expected; waited += 200) {
    await new Promise((r) => setTimeout(r, 200));
    stored = db.prepare('SELECT COUNT(*) AS n FROM device_pings').get().n;
    counted = db.prepare('SELECT SUM(ping_count) AS n FROM devices').get().n;
  }
  db.close();

  console.log('');
  console.log(`keepalives/s:     ${perSecond.toFixed(0)} (goal >= 20,000: ${perSecond >= 20_000 ? 'met' : 'MISSED'})`);
  console.log(`latency p50/p99:  ${p50.toFixed(2)} / ${p99.toFixed(2)} ms (goal p99 < 20 ms: ${p99 < 20 ? 'met' : 'MISSED'})`);
  console.log(`server CPU:       ${srv.cpuPercentOfCore.toFixed(0)} % of one core, RSS peak ${(srv.rssPeakBytes / 1048576).toFixed(0)} MiB`);
  // On a shared machine the server may not get a whole core: its CPU per keepalive says what one core would do.
  const cpuPerKeepalive = (srv.cpuPercentOfCore / 100 / perSecond) * 1e6;
  console.log(`CPU per keepalive: ${cpuPerKeepalive.toFixed(0)} us (one whole core: ~${(1e6 / cpuPerKeepalive).toFixed(0)} keepalives/s); load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`);
  console.log(`reference:        GET /healthz on the same server: ${referencePerSecond.toFixed(0)}/s; keepalives at ${((100 * perSecond) / referencePerSecond).toFixed(0)} % of it`);
  console.log(`answered:         ${requests} (errors ${errors}), stored pings ${stored}, devices' ping counts ${counted} (warm-up included)`);
  console.log(`nothing lost:     ${stored >= expected && counted >= expected ? 'yes' : 'NO'}`);
  console.log('published:        Healthchecks open-source handler ~250/s; healthchecks.io peak ~10,000/s');
  if (stored < expected) process.exitCode = 1;

  async function countWarmup() {
    return (await server.api('GET', '/api/v1/devices')).devices.reduce((n, d) => n + d.ping_count, 0) - requests;
  }
} finally {
  fs.rmSync(tokensFile, { force: true });
  await server.stop();
}
