import crypto from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connectAgent } from '../support/simulated-agent.mjs';
import { LiveRecorder } from '../support/live-recorder.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

let server: TestServer;
beforeEach(async () => { server = await startTestServer({ DVIC_PING_INTERVAL_MS: '150', DVIC_AUTH_TIMEOUT_MS: '400' }); });
afterEach(async () => { await server.close(); });

async function enrolledAgent(name: string) {
  const { config } = await server.enroll(name);
  const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
  return { agent, nodeId: config.node_id, config };
}

const nodeStatus = async (id: string) => (await server.api('GET', `/api/v1/nodes/${id}`)).json().node;

/** Connects expecting the server to refuse; returns the close code and reason. */
async function refused(options: Parameters<typeof connectAgent>[0]) {
  try {
    await connectAgent(options);
  } catch (err) {
    return err as { code: number; reason: string };
  }
  throw new Error('the server accepted the agent');
}

describe('agent handshake', () => {
  it('welcomes a node that signs the challenge with its key and shows it online', async () => {
    const { agent, nodeId } = await enrolledAgent('pi-1');
    expect(agent.welcome.data).toMatchObject({ node_id: nodeId, name: 'pi-1', protocol: 1, config: { metrics_interval_s: 5 } });
    const node = await nodeStatus(nodeId);
    expect(node).toMatchObject({ status: 'online', agent_version: 'sim-0.1.0', host: { hostname: 'sim' } });
    agent.close();
  });

  it('refuses a wrong key with 4001 and leaves the node offline', async () => {
    const { config } = await server.enroll('pi-2');
    const other = crypto.generateKeyPairSync('ed25519').privateKey;
    const err = await refused({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: '', sign: (m: string) => crypto.sign(null, Buffer.from(m), other).toString('base64') });
    expect(err).toMatchObject({ code: 4001, reason: 'auth failed: bad signature' });
    expect((await nodeStatus(config.node_id)).status).toBe('offline');
    const stats = (await server.api('GET', '/api/v1/server/stats')).json();
    expect(stats.agent_auth_failures['auth failed: bad signature']).toBe(1);
  });

  it('refuses an unknown node with 4004', async () => {
    const { privateKey } = crypto.generateKeyPairSync('ed25519');
    const err = await refused({ url: server.agentUrl, nodeId: crypto.randomUUID(), privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
    expect(err).toMatchObject({ code: 4004, reason: 'unknown node' });
  });

  it('refuses a revoked node with 4003, and revoking a connected node disconnects it', async () => {
    const { agent, nodeId, config } = await enrolledAgent('pi-3');
    expect((await server.api('POST', `/api/v1/nodes/${nodeId}/revoke`)).json().node.status).toBe('revoked');
    expect(await agent.closed).toEqual({ code: 4003, reason: 'node revoked' });
    const err = await refused({ url: server.agentUrl, nodeId, privateKeyPem: config.private_key });
    expect(err).toMatchObject({ code: 4003, reason: 'node revoked' });
    expect((await nodeStatus(nodeId)).status).toBe('revoked');
  });

  it('refuses a hello replayed on another connection with 4005', async () => {
    const { agent, nodeId, config } = await enrolledAgent('pi-4');
    const captured = agent.hello;
    const err = await refused({ url: server.agentUrl, nodeId, privateKeyPem: config.private_key, nonce: () => captured.data.nonce });
    expect(err).toMatchObject({ code: 4005, reason: 'auth failed: replayed nonce' });
    // The genuine connection is untouched.
    agent.sendHardware();
    await waitFor(async () => (await nodeStatus(nodeId)).hardware, 3000, 'hardware');
    agent.close();
  });

  it('closes a connection that does not answer the challenge in time with 4002', async () => {
    const ws = new WebSocket(server.agentUrl);
    const closed = await new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    expect(closed).toEqual({ code: 4002, reason: 'auth failed: challenge expired' });
  });

  it('closes with 1008 when the first message is not a hello', async () => {
    const { config } = await server.enroll('pi-5');
    const err = await refused({
      url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key,
      onChallenge: (ws: WebSocket) => { ws.send(JSON.stringify({ type: 'hardware.state', data: {} })); return false; },
    });
    expect(err.code).toBe(1008);
    expect(err.reason).toMatch(/expected a valid hello/);
  });

  it('replaces an older connection of the same node with the newer one', async () => {
    const { agent: first, nodeId, config } = await enrolledAgent('pi-6');
    const second = await connectAgent({ url: server.agentUrl, nodeId, privateKeyPem: config.private_key });
    expect(await first.closed).toEqual({ code: 4009, reason: 'replaced by a newer connection' });
    expect((await nodeStatus(nodeId)).status).toBe('online');
    second.close();
  });
});

describe('messages from an authenticated agent', () => {
  it('stores hardware state and pushes it to live subscribers', async () => {
    const { agent, nodeId } = await enrolledAgent('pi-7');
    const live = new WebSocket(server.liveUrl, { headers: { cookie: server.cookie } });
    const recorder = new LiveRecorder(live);
    const snapshot = await waitFor(() => recorder.first('snapshot'), 3000, 'snapshot');
    expect(snapshot.data.nodes.map((n) => n.name)).toContain('pi-7');
    agent.sendHardware({ cpu: { total_pct: 42.5, per_core_pct: [40, 45] } });
    const pushed = await waitFor(() => recorder.first('node.hardware'), 3000, 'node.hardware');
    expect(pushed.data).toMatchObject({ node_id: nodeId, hardware: { cpu: { total_pct: 42.5 } } });
    expect((await nodeStatus(nodeId)).hardware.cpu.total_pct).toBe(42.5);
    agent.close();
    const offline = await waitFor(() => recorder.all('node.status').find((m) => m.data.status === 'offline'), 3000, 'offline event');
    expect(offline.data.node_id).toBe(nodeId);
    live.close();
  });

  it('answers malformed JSON, schema-invalid and unknown messages with errors while other nodes keep reporting', async () => {
    const { agent: bad } = await enrolledAgent('bad');
    const { agent: good, nodeId: goodId } = await enrolledAgent('good');
    bad.send('{"type": "hardware.state", "data": ');
    expect((await bad.nextOf('error')).data.code).toBe('invalid_json');
    bad.send({ type: 'hardware.state', id: 'h1', data: { cpu: 'hot' } });
    expect(await bad.nextOf('error')).toMatchObject({ id: 'h1', data: { code: 'invalid_message', ref_type: 'hardware.state' } });
    bad.send({ type: 'exec.request', data: { command_id: 'x', command: 'rm -rf /' } });
    expect((await bad.nextOf('error')).data.code).toBe('unknown_type');
    // The shape update.status had before the update issue implemented it: refused by its schema.
    bad.send({ type: 'update.status', id: 'u1', data: { version: '9', state: 'done' } });
    expect(await bad.nextOf('error')).toMatchObject({ id: 'u1', data: { code: 'invalid_message', ref_type: 'update.status' } });
    good.sendHardware({ processes: 321 });
    await waitFor(async () => (await nodeStatus(goodId)).hardware?.processes === 321, 3000, 'good node hardware');
    const stats = (await server.api('GET', '/api/v1/server/stats')).json();
    expect(stats.messages_invalid).toBe(4);
    expect(bad.ws.readyState).toBe(WebSocket.OPEN);
    bad.close();
    good.close();
  });

  it('closes a connection sending a frame over 1 MiB with 1009, other nodes unaffected', async () => {
    const { agent: big, nodeId: bigId } = await enrolledAgent('big');
    const { agent: good, nodeId: goodId } = await enrolledAgent('good2');
    big.send({ type: 'hardware.state', data: { padding: 'x'.repeat(1024 * 1024) } });
    expect((await big.closed).code).toBe(1009);
    await waitFor(async () => (await nodeStatus(bigId)).status === 'offline', 3000, 'big offline');
    good.sendHardware({ processes: 99 });
    await waitFor(async () => (await nodeStatus(goodId)).hardware?.processes === 99, 3000, 'good node hardware');
    expect((await nodeStatus(goodId)).status).toBe('online');
    good.close();
  });

  it('marks a node that stops answering pings offline within 3 ping intervals', async () => {
    const { agent, nodeId } = await enrolledAgent('frozen');
    const started = Date.now();
    // Stop reading the socket: pings go unanswered, as with a hung machine.
    (agent.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await waitFor(async () => (await nodeStatus(nodeId)).status === 'offline', 3000, 'offline');
    expect(Date.now() - started).toBeLessThanOrEqual(3 * 150 + 300);
  });
});

describe('agent configuration', () => {
  it('pushes a changed metrics interval to a connected agent and sends it again on reconnect', async () => {
    const { agent, nodeId, config } = await enrolledAgent('tunable');
    const res = await server.api('PATCH', `/api/v1/nodes/${nodeId}/agent-config`, { metrics_interval_s: 1 });
    expect(res.json()).toEqual({ agent_config: { metrics_interval_s: 1 }, pushed: true });
    expect(await agent.nextOf('config.push')).toMatchObject({ data: { metrics_interval_s: 1 } });
    agent.close();
    const again = await connectAgent({ url: server.agentUrl, nodeId, privateKeyPem: config.private_key });
    expect(again.welcome.data.config.metrics_interval_s).toBe(1);
    again.close();
  });

  it('refuses settings outside the protocol schema', async () => {
    const { nodeId } = await enrolledAgent('tunable2');
    for (const body of [{ metrics_interval_s: 0 }, { metrics_interval_s: 'fast' }, { shell: 'rm -rf /' }]) {
      const res = await server.api('PATCH', `/api/v1/nodes/${nodeId}/agent-config`, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
  });
});
