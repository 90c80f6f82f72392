// A scaled-out lab of the bench's own on the machine's services (docs/scale-out.md): a PostgreSQL
// database (created, dropped at the end), a NATS prefix (its bucket and stream removed at the
// end) and one update-signing key file every replica shares.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import pg from 'pg';
import { processStats } from './process-stats.mjs';

export const PG_ADMIN_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

async function onAdmin(adminUrl, statement) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try { return await client.query(statement); } finally { await client.end(); }
}

/** A database of the bench's own: { name, url, drop() }. */
export async function createDatabase(adminUrl = PG_ADMIN_URL) {
  const name = `dvic_bench_${crypto.randomBytes(6).toString('hex')}`;
  await onAdmin(adminUrl, `CREATE DATABASE ${name}`);
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  return { name, url, drop: () => onAdmin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * Follows the CPU of the PostgreSQL backends serving `database` (the server runs on this machine)
 * until stop(), which answers { cpuSeconds, cpuPercentOfCore, backends }. Backends come and go
 * with the pools' idle timeouts, so each is followed by pid from when it is first seen (one that
 * ends between two looks loses at most intervalMs of its CPU).
 */
export function followBackends(database, intervalMs = 1000, adminUrl = PG_ADMIN_URL) {
  const first = new Map();
  const last = new Map();
  const started = performance.now();
  let stopped = false;
  let wake = () => {};
  const look = async (client, initial) => {
    const { rows } = await client.query('SELECT pid FROM pg_stat_activity WHERE datname = $1', [database]);
    for (const { pid } of rows) {
      try {
        const { cpuSeconds } = processStats(pid);
        if (!first.has(pid)) first.set(pid, initial ? cpuSeconds : 0);
        last.set(pid, cpuSeconds);
      } catch { /* the backend ended meanwhile */ }
    }
  };
  const loop = (async () => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await look(client, true);
      while (!stopped) {
        await new Promise((r) => { wake = r; setTimeout(r, intervalMs); });
        await look(client, false);
      }
    } finally {
      await client.end();
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake();
      await loop;
      const cpuSeconds = [...last].reduce((sum, [pid, cpu]) => sum + cpu - first.get(pid), 0);
      return { cpuSeconds, cpuPercentOfCore: (100 * cpuSeconds) / ((performance.now() - started) / 1000), backends: last.size };
    },
  };
}

/** followBackends over durationMs. */
export async function sampleBackends(database, durationMs) {
  const follow = followBackends(database);
  await new Promise((r) => setTimeout(r, durationMs));
  return follow.stop();
}

/** The env of a lab's replicas and close(): database dropped, NATS objects and key file removed. */
export async function startLab() {
  const database = await createDatabase();
  const prefix = `bench${crypto.randomBytes(5).toString('hex')}`;
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-bench-lab-'));
  const env = { DVIC_DATABASE_URL: database.url, DVIC_NATS_URL: NATS_URL, DVIC_NATS_PREFIX: prefix, DVIC_UPDATE_KEY_FILE: path.join(keyDir, 'update-key.pem') };
  return {
    database, prefix,
    replicaEnv: (replicaId) => ({ ...env, DVIC_REPLICA_ID: replicaId }),
    async close() {
      const nc = await connect({ servers: NATS_URL });
      const jsm = await nc.jetstreamManager();
      for (const stream of [`KV_${prefix}_node_holders`, `${prefix}_live_events`]) await jsm.streams.delete(stream).catch(() => false);
      await nc.close();
      await database.drop();
      fs.rmSync(keyDir, { recursive: true, force: true });
    },
  };
}
