// Deployments through the real server and hub, the nodes played by simulated agents: at most N
// nodes at a time, cancel, and a node that drops mid-deploy gets the request again when it returns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeploymentView } from '@dvic/protocol';
import { connectAgent, type SimulatedAgent } from '../support/simulated-agent.mjs';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

let server: TestServer;
// One server for the file (the restart test restarts it; the others do not mind).
beforeAll(async () => { server = await startTestServer({ DVIC_DEPLOY_RECONNECT_WAIT_S: '30' }); });
afterAll(async () => { await server.close(); });

const CAPS = ['hardware', 'deploy'];

async function node(name: string, fleet = 'other') {
  const { config } = await server.enroll(name, { fleet });
  const connect = () => connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: CAPS });
  return { agent: await connect(), connect, nodeId: config.node_id };
}

async function artifact(content: string): Promise<string> {
  const res = await fetch(`${server.baseUrl}/api/v1/artifacts?name=conf&version=${Date.now()}`, {
    method: 'POST', headers: { cookie: server.cookie, 'content-type': 'application/octet-stream' }, body: content,
  });
  return ((await res.json()) as { artifact: { id: string } }).artifact.id;
}

const view = async (id: string): Promise<DeploymentView> => (await server.api('GET', `/api/v1/deployments/${id}`)).json().deployment;
const status = (agent: SimulatedAgent, deployId: string, state: string, extra: object = {}) =>
  agent.send({ type: 'deploy.status', data: { deploy_id: deployId, state, ...extra } });

describe('deployments', () => {
  it('works on at most max_parallel nodes at once, and cancel stops the rest', async () => {
    const nodes = [await node('d-1', 'd'), await node('d-2', 'd'), await node('d-3', 'd')];
    const res = await server.api('POST', '/api/v1/deployments', { artifact: await artifact('x=1\n'), targets: { label: 'fleet=d' }, path: '/opt/dvic-demos/conf', max_parallel: 2, mode: '0600' });
    const { id } = res.json();
    const [first, second] = await Promise.all([nodes[0]!.agent.nextOf('deploy.request'), nodes[1]!.agent.nextOf('deploy.request')]);
    expect(first.data).toMatchObject({ deploy_id: id, action: 'deploy', path: '/opt/dvic-demos/conf', size: 4, format: 'file', mode: '0600', extract: false });
    expect(nodes[2]!.agent.messages.some((m) => m.type === 'deploy.request')).toBe(false);
    status(nodes[0]!.agent, id, 'downloading', { bytes: 2 });
    await waitFor(async () => (await view(id)).nodes[0]!.bytes_done === 2, 3000, 'bytes done');
    expect((await view(id)).nodes.map((n) => n.result)).toEqual(['running', 'running', 'pending']);
    expect(second.data.deploy_id).toBe(id);

    expect((await server.api('POST', `/api/v1/deployments/${id}/cancel`)).statusCode).toBe(202);
    const cancels = await Promise.all(nodes.slice(0, 2).map((n) => n.agent.next((m) => m.type === 'deploy.request' && (m.data as { action: string }).action === 'cancel')));
    expect(cancels).toHaveLength(2);
    for (const n of nodes.slice(0, 2)) status(n.agent, id, 'cancelled', { message: 'cancelled' });
    const ended = await waitFor(async () => { const v = await view(id); return v.nodes.every((n) => n.finished_at !== null) && v; }, 5000, 'every node ended');
    expect(ended.state).toBe('cancelled');
    expect(ended.nodes.map((n) => n.result)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(nodes[2]!.agent.messages.some((m) => m.type === 'deploy.request')).toBe(false);
  });

  it('sends the request again to a node that comes back, and serves chunks only to the node of the deploy', async () => {
    const a = await node('d-back');
    const other = await node('d-other');
    const { id } = (await server.api('POST', '/api/v1/deployments', { artifact: await artifact('0123456789'), targets: { nodes: ['d-back'] }, path: '/opt/dvic-demos/x' })).json();
    const first = await a.agent.nextOf('deploy.request');
    other.agent.send({ type: 'deploy.fetch', data: { deploy_id: id, offset: 0, length: 10 } });
    a.agent.send({ type: 'deploy.fetch', data: { deploy_id: id, offset: 0, length: 4 } });
    const chunk = await waitFor(() => a.agent.binary.shift(), 3000, 'a chunk');
    expect([chunk[0], chunk.readUInt32BE(1), Number(chunk.readBigUInt64BE(5)), chunk.subarray(13).toString()]).toEqual([0x10, (first.data as { channel: number }).channel, 0, '0123']);
    a.agent.close();
    await waitFor(async () => (await view(id)).nodes[0]!.step === 'queued', 5000, 'waiting for the node');
    expect((await view(id)).nodes[0]!.message).toContain('went offline');
    const back = await a.connect();
    const again = await back.nextOf('deploy.request');
    expect(again.data).toMatchObject({ deploy_id: id, action: 'deploy' });
    status(back, id, 'downloading', { bytes: 4, resumed_from: 4 });
    status(back, id, 'done', { bytes: 10, message: 'verified' });
    const done = await waitFor(async () => { const v = await view(id); return v.state === 'done' && v; }, 5000, 'done');
    expect(done.nodes[0]).toMatchObject({ result: 'done', resumed_from: 4, bytes_done: 10, message: 'verified' });
    expect(other.agent.binary).toEqual([]);
    back.close();
    other.agent.close();
  });

  it('starts no further node while paused, and goes on once resumed', async () => {
    const [a, b] = [await node('p-1'), await node('p-2')];
    const { id } = (await server.api('POST', '/api/v1/deployments', { artifact: await artifact('p'), targets: { nodes: ['p-1', 'p-2'] }, path: '/opt/dvic-demos/p', max_parallel: 1 })).json();
    await a!.agent.nextOf('deploy.request');
    expect((await server.api('POST', `/api/v1/deployments/${id}/pause`)).statusCode).toBe(202);
    status(a!.agent, id, 'done', { bytes: 1 });
    await waitFor(async () => (await view(id)).nodes[0]!.result === 'done', 3000, 'first node done');
    expect((await view(id)).state).toBe('paused');
    expect(b!.agent.messages.some((m) => m.type === 'deploy.request')).toBe(false);
    expect((await server.api('POST', `/api/v1/deployments/${id}/resume`)).statusCode).toBe(202);
    await b!.agent.nextOf('deploy.request');
    status(b!.agent, id, 'done', { bytes: 1 });
    await waitFor(async () => (await view(id)).state === 'done', 3000, 'done');
  });

  it('ends a deployment a server restart interrupted as failed, with the reason per node', async () => {
    const a = await node('d-restart');
    const { id } = (await server.api('POST', '/api/v1/deployments', { artifact: await artifact('z'), targets: { nodes: ['d-restart'] }, path: '/opt/dvic-demos/z' })).json();
    await a.agent.nextOf('deploy.request');
    a.agent.close();
    await server.restart();
    expect(await view(id)).toMatchObject({ state: 'failed', nodes: [{ result: 'failed', message: 'the server restarted during the deploy' }] });
  });

  it('fails a node whose agent cannot deploy, with the reason', async () => {
    const { config } = await server.enroll('old-agent');
    const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['hardware'] });
    const { id } = (await server.api('POST', '/api/v1/deployments', { artifact: await artifact('y'), targets: { nodes: ['old-agent'] }, path: '/opt/dvic-demos/y' })).json();
    const ended = await waitFor(async () => { const v = await view(id); return v.state !== 'running' && v; }, 5000, 'the end');
    expect(ended.nodes[0]).toMatchObject({ result: 'failed', message: 'the agent on this node cannot deploy (update it)' });
    agent.close();
  });
});
