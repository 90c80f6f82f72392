// Two replicas of one lab on the real NATS: an agent connected to replica A is used from replica B
// (commands, terminals, a tunnel, updates, deploys), and when A dies the agent moves to B.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryOpcode, decodeBinaryFrame } from '@dvic/protocol';
import { connectAgent, type SimulatedAgent } from '../server/test/support/simulated-agent.mjs';
import { natsAvailable } from '../server/test/cluster/bus-fixtures.js';
import { sshTarget } from '../server/test/support/ssh-target.js';
import { call, enroll, failure, getCommand, getNode, runOn, session, type Api } from './support/api.js';
import { startAgent, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess } from './support/processes.js';
import { copyDataDir, lab, type Lab } from './support/replicas.js';
import { openTerminal } from './support/terminal-viewer.js';

const LEASE_S = 3;

const finished = (api: Api, id: string) =>
  waitFor(async () => { const c = await getCommand(api, id); return c.status !== 'running' && c.status !== 'queued' && c; }, 20_000, `command ${id} to end`);

/** Runs a command from a replica as soon as it sees the node (its claim reaches it over the bus). */
const runWhenSeen = (api: Api, nodeId: string, command: string) =>
  waitFor(() => runOn(api, nodeId, { command }).catch(() => null), 15_000, `the node reachable to run ${command}`);

describe.skipIf(!(await natsAvailable()))('an agent on replica A, used from replica B', () => {
  let cluster: Lab;
  let a: ServerProcess;
  let b: ServerProcess;
  let apiA: Api;
  let apiB: Api;
  let cookieA: string;
  let cookieB: string;
  let realNode: { id: string; config: Parameters<typeof writeAgentConfig>[1] };
  let simNode: { id: string; privateKey: string };

  beforeAll(async () => {
    cluster = lab(LEASE_S);
    a = await cluster.startReplica('replica-a');
    ({ api: apiA, cookie: cookieA } = await session(a.baseUrl));
    const real = await enroll(apiA, 'pi-real');
    const sim = await enroll(apiA, 'pi-sim');
    realNode = { id: real.node.id, config: real.config };
    simNode = { id: sim.node.id, privateKey: sim.config.private_key };
    // Both replicas know the same users and nodes (one shared database once PostgreSQL lands).
    b = await cluster.startReplica('replica-b', { dataDir: await copyDataDir(a.dataDir) });
    ({ api: apiB, cookie: cookieB } = await session(b.baseUrl));
  });

  afterAll(async () => {
    await stopAll();
    await cluster?.close();
  });

  it('runs a command, terminals and a tunnel from B on the real agent connected to A', async () => {
    startAgent(writeAgentConfig(tempDir(), { ...realNode.config, server_url: a.agentUrl }, { server_urls: [a.agentUrl, b.agentUrl] }));

    const { id } = await runWhenSeen(apiB, realNode.id, 'echo "from $((40 + 2))"; echo oops >&2; exit 3');
    expect(await finished(apiB, id)).toMatchObject({ status: 'failed', exit_code: 3, stdout: 'from 42\n', stderr: 'oops\n' });

    // One terminal on each replica: both number theirs from channel 1, the holder keeps them apart.
    const onB = openTerminal(b.baseUrl, cookieB, realNode.id, 90, 20);
    const onA = openTerminal(a.baseUrl, cookieA, realNode.id, 70, 20);
    await waitFor(() => onB.events.some((e) => e.type === 'opened') && onA.events.some((e) => e.type === 'opened'), 10_000, 'both opened');
    onB.type('echo "B-$((6 * 7))"; tput cols\r');
    onA.type('echo "A-$((5 * 5))"\r');
    await onB.until(/[\r\n]B-42\r\n90\r\n/);
    await onA.until(/[\r\n]A-25\r\n/);
    expect(onB.screen).not.toContain('A-25');
    expect(onA.screen).not.toContain('B-42');
    // Enough output to need credit from B's viewer several times over (the window is 256 KiB).
    onB.type('head -c 1500000 /dev/zero | tr "\\0" x; echo; echo end-of-flood\r');
    await onB.until(/[\r\n]end-of-flood\r\n/, 20_000);
    onB.type('exit 5\r');
    await waitFor(() => onB.events.find((e) => e.type === 'closed'), 10_000, 'closed');
    expect(onB.events.find((e) => e.type === 'closed')).toMatchObject({ exit_code: 5, reason: 'the shell exited' });
    onA.ws.close();

    // A tunnel from B through the agent on A: an SSH enrollment gets as far as the target's host key.
    const ssh = await sshTarget();
    try {
      const body = { name: 'behind-pi', host: '127.0.0.1', port: ssh.port, username: 'lab', password: 'secret', via: realNode.id };
      const { enrollment } = await call(apiB.POST('/api/v1/enrollments', { body }));
      const shown = await waitFor(async () => {
        const current = (await call(apiB.GET('/api/v1/enrollments/{id}', { params: { path: { id: enrollment.id } } }))).enrollment;
        return current.state !== 'running' && current;
      }, 30_000, 'the enrollment to reach the host key');
      expect(shown).toMatchObject({ state: 'awaiting_host_key', via: realNode.id });
      expect(shown.host_key_fingerprint).toMatch(/^SHA256:/);
    } finally {
      ssh.close();
    }
  });

  it('sends an agent update and a deploy from B to the agent on A, and their requests come back to B', async () => {
    const agent: SimulatedAgent = await connectAgent({
      url: a.agentUrl, nodeId: simNode.id, privateKeyPem: simNode.privateKey, capabilities: ['hardware', 'exec', 'update', 'deploy'],
    });
    await runWhenSeen(apiB, simNode.id, 'true');
    const { id: updateId } = await call(apiB.POST('/api/v1/agent-updates', { body: { targets: { nodes: [simNode.id] }, force: true } }));
    const request = await agent.nextOf('update.request', 10_000);
    agent.send({ type: 'update.fetch', data: { update_id: request.data.update_id, version: request.data.version, offset: 0, length: 64 } });
    const chunk = await agent.nextOf('update.chunk', 10_000);
    expect(chunk.data).toMatchObject({ update_id: request.data.update_id, offset: 0 });
    expect(Buffer.from((chunk.data as { data: string }).data, 'base64').toString()).toMatch(/^#!\/usr\/bin\/env python3/);
    agent.send({ type: 'update.status', data: { update_id: request.data.update_id, version: request.data.version, step: 'healthy' } });
    await waitFor(async () => (await call(apiB.GET('/api/v1/agent-updates/{id}', { params: { path: { id: updateId } } }))).update.state === 'done', 10_000, 'the update done on B');

    const bytes = Buffer.from('a demo, deployed from replica B\n');
    const upload = await fetch(`${b.baseUrl}/api/v1/artifacts?name=demo&version=1`, { method: 'POST', headers: { cookie: cookieB, 'content-type': 'application/octet-stream' }, body: bytes });
    const { artifact } = await upload.json() as { artifact: { id: string } };
    const { id: deploymentId } = await call(apiB.POST('/api/v1/deployments', { body: { artifact: artifact.id, targets: { nodes: [simNode.id] }, path: '/opt/dvic-demos/demo.txt' } }));
    const deploy = await agent.nextOf('deploy.request', 10_000);
    const { deploy_id: deployId, channel } = deploy.data as { deploy_id: string; channel: number };
    agent.send({ type: 'deploy.fetch', data: { deploy_id: deployId, offset: 0, length: bytes.length } });
    const frame = await waitFor(() => agent.binary.map(decodeBinaryFrame).find((f) => f?.opcode === BinaryOpcode.artifactChunk), 10_000, 'the artifact chunk');
    expect(frame.channel).toBe(channel);
    expect(frame.payload.subarray(8)).toEqual(bytes);
    agent.send({ type: 'deploy.status', data: { deploy_id: deployId, state: 'done', bytes: bytes.length } });
    await waitFor(async () => (await call(apiB.GET('/api/v1/deployments/{id}', { params: { path: { id: deploymentId } } }))).deployment.state === 'done', 10_000, 'the deploy done on B');
    agent.close();
  });

  it('when A dies: its sessions on B end, B answers its nodes offline, the agent reconnects to B, commands work again', async () => {
    const stranded = await connectAgent({ url: a.agentUrl, nodeId: simNode.id, privateKeyPem: simNode.privateKey, capabilities: ['hardware', 'exec'] });
    await runWhenSeen(apiB, simNode.id, 'true');
    const terminal = openTerminal(b.baseUrl, cookieB, realNode.id);
    await waitFor(() => terminal.events.some((e) => e.type === 'opened'), 10_000, 'opened');
    await a.kill('SIGKILL');
    await stranded.closed;
    // B's terminal through A ends (A's claim expired, or the agent came to B): it does not hang.
    const closed = await waitFor(() => terminal.events.find((e) => e.type === 'closed'), 4 * LEASE_S * 1000, 'the terminal closed');
    expect(closed).toMatchObject({ reason: 'the node disconnected' });
    // The simulated agent does not come back: B answers that its node is offline (A does not
    // answer any more, and its claim expires).
    const offline = await waitFor(() => failure(runOn(apiB, simNode.id, { command: 'true' })).catch(() => null), 4 * LEASE_S * 1000, 'the node offline on B');
    expect(offline).toMatchObject({ status: 409, code: 'node_offline' });
    // The real agent moves to B (its next server URL) and runs commands there.
    await waitFor(async () => (await getNode(apiB, realNode.id)).status === 'online', 4 * LEASE_S * 1000, 'the real agent on B');
    const { id } = await runOn(apiB, realNode.id, { command: 'echo back on B' });
    expect(await finished(apiB, id)).toMatchObject({ status: 'succeeded', stdout: 'back on B\n' });
  });
});
