import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaderLease, NotLeaderError } from '../../src/cluster/leader-lease.js';
import { waitFor } from '../support/test-server.js';
import { createTestDatabase, onDatabase, postgresAvailable } from './bus-fixtures.js';

// Against the real PostgreSQL on 127.0.0.1:5432, in a database of this file's own.
const CHECK_MS = 200;
let database: { url: string; drop: () => Promise<void> };
const leases: LeaderLease[] = [];

interface Replica { lease: LeaderLease; deposed: string[] }

function replica(name: string): Replica {
  const deposed: string[] = [];
  const lease = new LeaderLease({ databaseUrl: database.url, name, checkMs: CHECK_MS, onDeposed: (reason) => deposed.push(reason) });
  leases.push(lease);
  lease.start();
  return { lease, deposed };
}

const leaders = (replicas: Replica[]) => replicas.filter((r) => r.lease.isLeader());

/** Samples the leaders for a while (each sample one poll of waitFor): never more than one. */
async function exactlyOneLeaderThroughout(replicas: Replica[], samples = 30): Promise<Replica> {
  const seen: number[] = [];
  await waitFor(() => seen.push(leaders(replicas).length) >= samples, 20_000, `${samples} samples`);
  expect(new Set(seen)).toEqual(new Set([1]));
  const [leader] = leaders(replicas);
  if (!leader) throw new Error('the leader went away');
  return leader;
}

const admin = <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => onDatabase(database.url, work);

describe.skipIf(!(await postgresAvailable()))('leader lease (PostgreSQL advisory lock)', () => {
  beforeAll(async () => {
    database = await createTestDatabase();
    await admin((c) => c.query('CREATE TABLE notifications (id text PRIMARY KEY)'));
  });
  afterAll(async () => { await database?.drop(); });
  afterEach(async () => { await Promise.all(leases.splice(0).map((l) => l.stop())); });

  it('exactly one of three replicas leads; an orderly stop hands over to exactly one other', async () => {
    const name = `alerts-${crypto.randomUUID()}`;
    const replicas = [replica(name), replica(name), replica(name)];
    await waitFor(() => leaders(replicas).length === 1, 20_000, 'a leader');
    const first = await exactlyOneLeaderThroughout(replicas);

    await first.lease.stop();
    const rest = replicas.filter((r) => r !== first);
    await waitFor(() => leaders(rest).length === 1, 20_000, 'a new leader');
    await exactlyOneLeaderThroughout(rest);
    expect(first.deposed).toEqual(['stopped']);
  });

  it('leases of different names are independent', async () => {
    const a = replica(`alerts-${crypto.randomUUID()}`);
    const b = replica(`retention-${crypto.randomUUID()}`);
    await waitFor(() => a.lease.isLeader() && b.lease.isLeader(), 20_000, 'both leaders');
  });

  it("a killed leader's lease goes to one follower", async () => {
    const name = `alerts-${crypto.randomUUID()}`;
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lease-holder.mjs');
    const child = spawn(process.execPath, [script, database.url, name], { stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    try {
      await waitFor(() => output.includes('elected'), 20_000, 'the child process to lead');
      const followers = [replica(name), replica(name)];
      // Several checks go by: the followers try and fail while the child lives.
      const seen: number[] = [];
      await waitFor(() => seen.push(leaders(followers).length) >= 30, 20_000, 'samples');
      expect(new Set(seen)).toEqual(new Set([0]));

      child.kill('SIGKILL');
      await waitFor(() => leaders(followers).length === 1, 20_000, 'a follower to lead');
      await exactlyOneLeaderThroughout(followers);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("a leader whose session the database ends is deposed, and its leader work does not commit", async () => {
    const name = `alerts-${crypto.randomUUID()}`;
    const only = replica(name);
    await waitFor(() => only.lease.isLeader(), 20_000, 'the leader');
    const follower = replica(name);
    await expect(follower.lease.asLeader(async () => 1)).rejects.toBeInstanceOf(NotLeaderError);
    await follower.lease.stop();

    let inserted!: () => void;
    const halfway = new Promise<void>((resolve) => { inserted = resolve; });
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const work = only.lease.asLeader(async (client) => {
      await client.query("INSERT INTO notifications VALUES ('alert-1')");
      inserted();
      await held;
      await client.query("INSERT INTO notifications VALUES ('alert-1-more')");
    });
    const settled = work.then(() => 'committed', (err: Error) => err.message);
    await halfway;
    await admin((c) => c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
      [`dvic-lease-${name}`.slice(0, 63)]));
    await waitFor(() => only.deposed.length === 1, 20_000, 'the leader to be deposed');
    release();
    expect(await settled).not.toBe('committed');
    expect(only.deposed[0]).toMatch(/^lost the database session/);
    const { rows } = await admin((c) => c.query('SELECT id FROM notifications'));
    expect(rows).toEqual([]);
    // It connects again and, being the only replica left trying, leads again.
    await waitFor(() => only.lease.isLeader(), 20_000, 'the lease taken again');
  });

  it('never leads while its database cannot be reached, and keeps trying without crashing', async () => {
    const closed = net.createServer(); // a port that takes connections and never speaks: a hung database
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const sockets: net.Socket[] = [];
    closed.on('connection', (socket) => sockets.push(socket));
    const port = (closed.address() as net.AddressInfo).port;
    const lease = new LeaderLease({ databaseUrl: `postgres://postgres@127.0.0.1:${port}/x`, name: 'unreachable', checkMs: CHECK_MS });
    leases.push(lease);
    lease.start();
    try {
      await waitFor(() => sockets.length >= 3, 20_000, 'three attempts'); // each attempt timed out and was tried again
      expect(lease.isLeader()).toBe(false);
      await expect(lease.asLeader(async () => 1)).rejects.toBeInstanceOf(NotLeaderError);
    } finally {
      await lease.stop();
      sockets.forEach((s) => s.destroy());
      closed.close();
    }
  });
});
