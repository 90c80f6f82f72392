import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentConfigFile, CommandView, NodeView } from '@dvic/protocol';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterNames } from '../../src/cluster/cluster-names.js';
import { LocalAgent } from '../../src/local-agent/local-agent.js';
import { generateNodeKeypair } from '../../src/services/node-keys.js';
import { connectAgent, type SimulatedAgent } from '../support/simulated-agent.mjs';
import { testDatabase } from '../support/postgres.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';
import { NATS_URL, natsAvailable, postgresAvailable, removeLabStreams } from './bus-fixtures.js';

// Two replicas (two real servers) on one PostgreSQL database and the real NATS, with simulated
// agents (and real ones for the local agent): what one replica does must not undo, nor miss,
// what the other does (docs/scale-out.md, "Work a replica leaves behind" and "Nodes").

const REPLICAS_TIMEOUT_MS = 120_000;
const ready = (await natsAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('replicas on one database', () => {
  const prefix = `t${crypto.randomBytes(6).toString('hex')}`;
  let database: Awaited<ReturnType<typeof testDatabase>>;
  let a: TestServer;
  let b: TestServer;
  const stops: (() => unknown)[] = [];
  const replica = (id: string) => startTestServer({
    DVIC_NATS_URL: NATS_URL, DVIC_NATS_PREFIX: prefix, DVIC_REPLICA_ID: id, DVIC_DATABASE_URL: database.url, DVIC_CLUSTER_LEASE_S: '1',
  });
  /** A simulated agent of a node enrolled on A, connected to the given replica. */
  const agentOn = async (server: TestServer, config: AgentConfigFile, privateKeyPem = config.private_key): Promise<SimulatedAgent> => {
    const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem, capabilities: ['hardware', 'exec'] });
    stops.push(() => agent.close());
    return agent;
  };
  const command = async (server: TestServer, id: string) => (await server.api('GET', `/api/v1/commands/${id}`)).json<{ command: CommandView }>().command;

  beforeAll(async () => {
    database = await testDatabase();
    a = await replica('replica-a');
    b = await replica('replica-b');
  }, REPLICAS_TIMEOUT_MS);

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    for (const server of [a, b]) await server?.close().catch(() => undefined);
    await database?.drop();
    await removeLabStreams(clusterNames(prefix));
  }, 60_000);

  it("a replica's restart leaves the other's running command alone: it succeeds, never lost", async () => {
    const { config } = await a.enroll('pi-long-command');
    const agent = await agentOn(a, config);
    const run = await a.api('POST', `/api/v1/nodes/${config.node_id}/exec`, { command: 'sleep 600', timeout_s: 900 });
    expect(run.statusCode).toBe(202);
    const { id } = run.json<{ id: string }>();
    await agent.nextOf('exec.request', 10_000);

    await b.restart();
    // B reads the command from the database: what B's start left there.
    expect((await command(b, id)).status).toBe('running');

    agent.send({ type: 'exec.result', data: { command_id: id, exit_code: 0, signal: null, duration_ms: 1200 } });
    await waitFor(async () => (await command(b, id)).status === 'succeeded', 10_000, 'the command succeeded, read on B');
  }, 60_000);

  it("a node re-keyed on A: B admits the new key and refuses the old one", async () => {
    const { config } = await a.enroll('pi-rekeyed');
    (await agentOn(b, config)).close(); // B now knows the node, with its first key
    const keys = generateNodeKeypair();
    await a.app.nodeRegistry.replaceKey(config.node_id, keys.publicKeyPem);

    await expect(connectAgent({ url: b.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key }))
      .rejects.toMatchObject({ reason: expect.stringContaining('bad signature') });
    const renewed = await agentOn(b, config, keys.privateKeyPem);
    expect(renewed.welcome.type).toBe('welcome');
  }, 30_000);

  it('an agent config changed on B reaches the agent held by A', async () => {
    const { config } = await a.enroll('pi-config-on-b');
    const agent = await agentOn(a, config);
    await waitFor(() => b.app.cluster.link.isConnected(config.node_id), 10_000, 'B to see the agent on A');

    const change = await b.api('PATCH', `/api/v1/nodes/${config.node_id}/agent-config`, { metrics_interval_s: 7 });
    expect(change.statusCode).toBe(200);
    expect(change.json()).toMatchObject({ agent_config: { metrics_interval_s: 7 }, pushed: true });
    expect((await agent.nextOf('config.push', 10_000)).data).toEqual({ metrics_interval_s: 7 });
  }, 30_000);

  it("each replica's local agent runs as a node of its own, named after the replica", async () => {
    const localOf = async (server: TestServer, id: string) => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `dvic-local-${id}-`));
      const agent = new LocalAgent(server.app.nodeRegistry, {
        dataDir, serverUrl: server.agentUrl, python: 'python3', metricsIntervalS: 5, sharedAsReplica: id,
      }, server.app.log.child({ component: 'local-agent' }));
      stops.push(() => fs.rmSync(dataDir, { recursive: true, force: true }), () => agent.stop());
      await agent.start();
      return (JSON.parse(fs.readFileSync(agent.configPath, 'utf8')) as { node_id: string }).node_id;
    };
    const onA = await localOf(a, 'replica-a');
    const onB = await localOf(b, 'replica-b');
    expect(onB).not.toBe(onA);

    const node = async (id: string) => (await a.api('GET', `/api/v1/nodes/${id}`)).json<{ node: NodeView }>().node;
    for (const id of [onA, onB]) await waitFor(async () => (await node(id)).status === 'online', 30_000, `local node ${id} online`);
    expect((await node(onB)).name).toBe('replica-b');
    expect((await node(onA)).is_local && (await node(onB)).is_local).toBe(true);
  }, 60_000);

  it('the command of a replica that is gone is ended by the leader: lost, saying why', async () => {
    const { config } = await a.enroll('pi-orphaned-command');
    const agent = await agentOn(a, config);
    await waitFor(() => b.app.cluster.link.isConnected(config.node_id), 10_000, 'B to see the agent on A');
    const run = await b.api('POST', `/api/v1/nodes/${config.node_id}/exec`, { command: 'sleep 600', timeout_s: 900 });
    const { id } = run.json<{ id: string }>();
    await agent.nextOf('exec.request', 10_000);

    await b.close();
    await waitFor(async () => (await command(a, id)).status === 'lost', 20_000, 'the command lost, read on A');
    expect((await command(a, id)).error).toContain('replica-b');
  }, 60_000);
});
