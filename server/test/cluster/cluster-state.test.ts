import crypto from 'node:crypto';
import type { DeviceDetailView } from '@dvic/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterNames } from '../../src/cluster/cluster-names.js';
import { testDatabase } from '../support/postgres.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';
import { NATS_URL, natsAvailable, onDatabase, postgresAvailable, removeLabStreams } from './bus-fixtures.js';

// Two replicas (two real servers) on one PostgreSQL database and the real NATS: the cluster-state
// plugin's leader lease decides which one runs the leader's work.

const REPLICAS_TIMEOUT_MS = 120_000;
const ready = (await natsAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('cluster state on a shared database', () => {
  const prefix = `t${crypto.randomBytes(6).toString('hex')}`;
  let database: Awaited<ReturnType<typeof testDatabase>>;
  const servers: TestServer[] = [];
  const replica = (id: string) => startTestServer({
    DVIC_NATS_URL: NATS_URL, DVIC_NATS_PREFIX: prefix, DVIC_REPLICA_ID: id, DVIC_DATABASE_URL: database.url, DVIC_CLUSTER_LEASE_S: '1',
  });
  /** A node left online in the database by a replica that is gone (no replica holds its agent). */
  const STRANDED = '0b6a2c1e-7d4f-4e2a-9c3b-5f1e2d3c4b5a';

  beforeAll(async () => {
    database = await testDatabase();
    await onDatabase(database.url, (client) => client.query(`INSERT INTO nodes (id, name, labels, agent_config, public_key, is_local, created_at, status, status_since)
      VALUES ($1, 'pi-stranded', '{}', '{}', 'no key', 0, 1, 'online', 1)`, [STRANDED]));
    servers.push(await replica('replica-a'));
    servers.push(await replica('replica-b'));
  }, REPLICAS_TIMEOUT_MS);

  afterAll(async () => {
    for (const server of servers) await server.close();
    await database?.drop();
    await removeLabStreams(clusterNames(prefix));
  }, 60_000);

  const leaders = () => servers.filter((s) => s.app.clusterLeader?.isLeader());

  it('a node and a device made on A are usable on B: the node read, the device taking pings', async () => {
    const [a, b] = servers as [TestServer, TestServer];
    const nodeId = (await a.enroll('pi-made-on-a')).node.id;
    await waitFor(async () => (await b.api('GET', `/api/v1/nodes/${nodeId}`)).statusCode === 200, 10_000, 'the node on B');

    const device = (await a.api('POST', '/api/v1/devices', { name: 'esp32-made-on-a' })).json<{ device: { id: string }; token: string }>();
    await waitFor(async () => (await b.app.inject({ method: 'GET', url: `/ping/${device.token}` })).statusCode === 200, 10_000, 'a ping taken on B');
    expect((await b.api('GET', `/api/v1/devices/${device.device.id}`)).statusCode).toBe(200);
  }, 30_000);

  it('a channel, a rule change and a mute made on one replica are the other\'s too (its REST answers and its alert engine)', async () => {
    const [a, b] = servers as [TestServer, TestServer];
    const channel = (await a.api('POST', '/api/v1/channels', { type: 'webhook', name: 'made on A', url: 'http://127.0.0.1:9/hook' })).json<{ channel: { id: string } }>().channel;
    const rules = (await b.api('GET', '/api/v1/alert-rules')).json<{ rules: { id: string; kind: string }[] }>().rules;
    const offline = rules.find((r) => r.kind === 'node_offline')!;
    expect((await b.api('PATCH', `/api/v1/alert-rules/${offline.id}`, { for_s: 7 })).statusCode).toBe(200);
    const mute = { rule_id: offline.id, ends_at: Date.now() + 3_600_000, reason: 'made on B' };
    expect((await b.api('POST', '/api/v1/alert-mutes', mute)).statusCode).toBe(201);

    await waitFor(async () => (await b.api('GET', '/api/v1/channels')).json<{ channels: { id: string }[] }>().channels.some((c) => c.id === channel.id), 10_000, "A's channel on B");
    await waitFor(async () => (await a.api('GET', '/api/v1/alert-rules')).json<{ rules: { id: string; for_s: number }[] }>().rules.find((r) => r.id === offline.id)?.for_s === 7, 10_000, "B's rule change on A");
    await waitFor(async () => (await a.api('GET', '/api/v1/alert-mutes')).json<{ mutes: { reason: string }[] }>().mutes.some((m) => m.reason === 'made on B'), 10_000, "B's mute on A");
  }, 30_000);

  it('the leader marks offline a node left online that no replica holds, on every replica', async () => {
    const status = async (server: TestServer) => (await server.api('GET', `/api/v1/nodes/${STRANDED}`)).json<{ node: { status: string } }>().node.status;
    for (const server of servers) await waitFor(async () => (await status(server)) === 'offline', 15_000, 'the stranded node offline');
  }, 30_000);

  it("a device pinging the follower is judged by the leader from the follower's pings: never late while it pings, down once it stops", async () => {
    await waitFor(() => leaders().length === 1, 15_000, 'a leader');
    const [leader] = leaders() as [TestServer];
    const pinger = servers.find((s) => s !== leader)!;
    const made = (await pinger.api('POST', '/api/v1/devices', { name: 'esp32-pings-follower', period_s: 5, grace_s: 1 })).json<{ device: { id: string }; token: string }>();
    const detail = async (server: TestServer) => (await server.api('GET', `/api/v1/devices/${made.device.id}`)).json<{ device?: DeviceDetailView }>().device;
    await waitFor(async () => (await detail(leader)) !== undefined, 10_000, 'the device known to the leader');
    // Pings every 0.5 s for 8 s: past the period more than once, each ping well inside it.
    let lastPing = 0;
    for (let i = 0; i < 16; i++) {
      expect((await pinger.app.inject({ method: 'GET', url: `/ping/${made.token}` })).statusCode).toBe(200);
      lastPing = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect((await detail(leader))!.transitions.map((t) => t.to)).toEqual(['up']);
    // It stops: the leader marks it late, then down, from the last ping the follower took.
    await waitFor(async () => (await detail(leader))?.status === 'down', 20_000, 'the device down on the leader');
    await waitFor(async () => (await detail(pinger))?.status === 'down', 10_000, 'the device down on the follower');
    const transitions = (await detail(leader))!.transitions;
    expect(transitions.map((t) => t.to)).toEqual(['down', 'late', 'up']);
    expect(transitions[1]!.at).toBeGreaterThanOrEqual(lastPing - 1000 + 5000);
  }, 60_000);

  it('exactly one replica leads, and the other takes over when it stops', async () => {
    await waitFor(() => leaders().length === 1, 15_000, 'a leader');
    const [leader] = leaders();
    const follower = servers.find((s) => s !== leader)!;
    expect(follower.app.clusterLeader?.isLeader()).toBe(false);
    // An orderly stop gives the lock up at once: the follower takes it at its next try.
    await leader!.close();
    servers.splice(servers.indexOf(leader!), 1);
    await waitFor(() => follower.app.clusterLeader?.isLeader(), 15_000, 'the follower to lead');
  }, 60_000);

});
