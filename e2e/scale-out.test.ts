// Two replicas of one lab on ONE PostgreSQL database and the real NATS, sharing the update key:
// a node enrolled through B signs in on A, B runs a command on it, and a log line of A's node
// reaches a live subscriber on B.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connectAgent, type SimulatedAgent } from '../server/test/support/simulated-agent.mjs';
import { natsAvailable, postgresAvailable } from '../server/test/cluster/bus-fixtures.js';
import { LiveRecorder } from '../server/test/support/live-recorder.js';
import { testDatabase } from '../server/test/support/postgres.js';
import { enroll, getCommand, runOn, session, type Api } from './support/api.js';
import { startAgent, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess } from './support/processes.js';
import { lab, type Lab } from './support/replicas.js';

const LEASE_S = 3;
const ready = (await natsAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('two replicas on one PostgreSQL database', () => {
  let cluster: Lab;
  let database: Awaited<ReturnType<typeof testDatabase>>;
  let a: ServerProcess;
  let b: ServerProcess;
  let apiB: Api;
  let cookieB: string;
  let keyFile: string;
  const agents: SimulatedAgent[] = [];

  beforeAll(async () => {
    cluster = lab(LEASE_S);
    database = await testDatabase({ migrated: false }); // the replicas migrate it, taking turns
    keyFile = path.join(tempDir(), 'lab-update-key.pem');
    const env = { DVIC_DATABASE_URL: database.url, DVIC_UPDATE_KEY_FILE: keyFile };
    [a, b] = await Promise.all([cluster.startReplica('replica-a', { env }), cluster.startReplica('replica-b', { env })]);
    ({ api: apiB, cookie: cookieB } = await session(b.baseUrl));
  });

  afterAll(async () => {
    for (const agent of agents) agent.close();
    await stopAll();
    await cluster?.close();
    await database?.drop();
  });

  it('an agent of a node enrolled through B signs in on A, and B runs a command on it', async () => {
    // Enrolled after A loaded its nodes: A reads it from the database when its agent signs in.
    const node = await enroll(apiB, 'pi-shared');
    startAgent(writeAgentConfig(tempDir(), { ...node.config, server_url: a.agentUrl }));
    const { id } = await waitFor(() => runOn(apiB, node.node.id, { command: 'echo "on A: $((6 * 7))"' }).catch(() => null), 20_000, 'the node reachable from B');
    const done = await waitFor(async () => { const c = await getCommand(apiB, id); return c.status !== 'running' && c.status !== 'queued' && c; }, 20_000, 'the command to end');
    expect(done).toMatchObject({ status: 'succeeded', exit_code: 0, stdout: 'on A: 42\n' });
    // One key for the lab: in the shared file, none in the replicas' data dirs.
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    for (const replica of [a, b]) expect(fs.existsSync(path.join(replica.dataDir, 'update-key.pem'))).toBe(false);
  });

  it("a log line of A's node reaches a live subscriber on B", async () => {
    const node = await enroll(apiB, 'pi-logs');
    const socket = new WebSocket(`${b.baseUrl.replace('http', 'ws')}/api/v1/live`, { headers: { cookie: cookieB } });
    const recorder = new LiveRecorder(socket);
    await waitFor(() => recorder.first('snapshot'), 10_000, 'the live snapshot on B');
    socket.send(JSON.stringify({ type: 'logs.subscribe', id: 'follow', data: { node: 'pi-logs' } }));

    const agent = await connectAgent({ url: a.agentUrl, nodeId: node.node.id, privateKeyPem: node.config.private_key, capabilities: ['exec'] });
    agents.push(agent);
    const records = [{ ts: new Date().toISOString(), level: 'WARN', message: 'kiosk camera lost on A', offset: 0 }];
    agent.send({ type: 'demo.logs', id: 'l1', data: { token: 'k3JxV9mQ2pL8sT4wZ6yB1c', demo: 'kiosk', file_generation: 0, start_offset: 0, end_offset: 100, records } });
    await agent.next((m: { id?: string }) => m.id === 'l1', 10_000);

    const lines = () => recorder.all('logs.records').flatMap((m) => m.data.records).map((r) => `${r.demo}:${r.message}`);
    await waitFor(() => lines().length > 0, 10_000, 'the line on B');
    expect(lines()).toEqual(['kiosk:kiosk camera lost on A']);
    socket.close();
  });
});
