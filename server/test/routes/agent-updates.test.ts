import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentUpdateView, UpdateChunkMessage } from '@dvic/protocol';
import { connectAgent, type SimulatedAgent } from '../support/simulated-agent.mjs';
import { hashPassword } from '../../src/services/passwords.js';
import { defaultAgentPath } from '../../src/local-agent/local-agent.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

// Simulated agents (the real protocol, answers written here) against a real in-process server;
// the real agent updating itself is e2e/agent-update.test.ts.
let server: TestServer;
beforeAll(async () => { server = await startTestServer({ DVIC_UPDATE_NODE_TIMEOUT_S: '30' }); });
afterAll(async () => { await server.close(); });

const SHIPPED = fs.readFileSync(defaultAgentPath());
const SHIPPED_VERSION = /^AGENT_VERSION = "([^"]+)"$/m.exec(SHIPPED.toString())![1]!;

async function onlineAgent(name: string, version = '0.0.1', capabilities = ['hardware', 'update']) {
  const { config } = await server.enroll(name);
  const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities, hello: { agent_version: version } });
  return { agent, nodeId: config.node_id };
}

const start = async (body: object) => server.api('POST', '/api/v1/agent-updates', body);
const getUpdate = async (id: string): Promise<AgentUpdateView> => (await server.api('GET', `/api/v1/agent-updates/${id}`)).json().update;
const ended = (id: string) => waitFor(async () => { const u = await getUpdate(id); return ['done', 'failed', 'cancelled'].includes(u.state) && u; }, 10_000, 'the update to end');
const status = (agent: SimulatedAgent, update_id: string, step: string, extra: object = {}) =>
  agent.send({ type: 'update.status', data: { update_id, version: SHIPPED_VERSION, step, ...extra } });

/** Downloads the whole file the way the agent does, piece by piece. */
async function download(agent: SimulatedAgent, updateId: string, size: number, piece = 65536): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < size; offset += piece) {
    agent.send({ type: 'update.fetch', data: { update_id: updateId, version: SHIPPED_VERSION, offset, length: Math.min(piece, size - offset) } });
    const chunk = await agent.next((m) => m.type === 'update.chunk' && m.data.offset === offset) as UpdateChunkMessage;
    parts.push(Buffer.from(chunk.data.data!, 'base64'));
  }
  return Buffer.concat(parts);
}

describe('the shipped agent', () => {
  it('is the agent file of the install: its version, sha256 and size', async () => {
    const res = await server.api('GET', '/api/v1/agent-release');
    expect(res.json()).toEqual({ agent: { version: SHIPPED_VERSION, sha256: crypto.createHash('sha256').update(SHIPPED).digest('hex'), size: SHIPPED.length } });
  });

  it('has its update key in the data dir (0600) and the public half in every welcome', async () => {
    const { agent } = await onlineAgent('keyed');
    expect(fs.statSync(`${server.dataDir}/update-key.pem`).mode & 0o777).toBe(0o600);
    expect(agent.welcome.data.update_key).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    agent.close();
  });
});

describe('POST /api/v1/agent-updates', () => {
  it('sends a signed update.request, serves the file over the link and follows the steps to healthy', async () => {
    const { agent, nodeId } = await onlineAgent('upd-1');
    const res = await start({ targets: { nodes: ['upd-1'] }, canary: true });
    expect(res.statusCode).toBe(202);
    const { id } = res.json();
    const request = await agent.nextOf('update.request');
    expect(request.data).toMatchObject({ update_id: id, version: SHIPPED_VERSION, size: SHIPPED.length });
    const file = await download(agent, id, request.data.size);
    expect(file.equals(SHIPPED)).toBe(true);
    expect(crypto.createHash('sha256').update(file).digest('hex')).toBe(request.data.sha256);
    expect(crypto.verify('sha256', file, agent.welcome.data.update_key!, Buffer.from(request.data.signature, 'base64'))).toBe(true);
    status(agent, id, 'download', { progress: 0.5 });
    await waitFor(async () => (await getUpdate(id)).nodes[0]!.detail === '50%', 5000, 'the download progress');
    for (const step of ['verify', 'selftest', 'switch', 'restart', 'healthy']) status(agent, id, step);
    const done = await ended(id);
    expect(done).toMatchObject({ state: 'done', version: SHIPPED_VERSION, canary: true, user: 'admin' });
    expect(done.nodes).toEqual([expect.objectContaining({ node_id: nodeId, name: 'upd-1', from_version: '0.0.1', state: 'done', step: 'healthy', result: 'updated', canary: true })]);
    const audit = (await server.api('GET', '/api/v1/audit?action=agent-update')).json().entries;
    expect(audit[0]).toMatchObject({ username: 'admin', outcome: 'ok' });
    agent.close();
  });

  it('serves pieces only to a node it is updating, with that version', async () => {
    const { agent } = await onlineAgent('upd-stranger');
    agent.send({ type: 'update.fetch', data: { update_id: 'made-up', version: SHIPPED_VERSION, offset: 0, length: 1024 } });
    const refused = await agent.nextOf('update.chunk');
    expect(refused.data).toEqual({ update_id: 'made-up', version: SHIPPED_VERSION, offset: 0, error: 'no update in progress for this node and version' });
    agent.close();
  });

  it('fails a node that refuses or rolls back, with its reason, and skips the rest after a failed canary', async () => {
    const a = await onlineAgent('upd-canary');
    const b = await onlineAgent('upd-rest');
    const { id } = (await start({ targets: { nodes: ['upd-canary', 'upd-rest'] } })).json();
    await a.agent.nextOf('update.request');
    status(a.agent, id, 'rolled_back', { message: 'version 9 did not prove healthy: back on 0.0.1' });
    const u = await ended(id);
    expect(u.nodes.map((n) => [n.name, n.state, n.step, n.result, n.detail])).toEqual([
      ['upd-canary', 'failed', 'rolled_back', 'rolled_back', 'version 9 did not prove healthy: back on 0.0.1'], ['upd-rest', 'skipped', null, 'skipped', 'the canary node failed'],
    ]);
    expect(b.agent.messages.some((m: { type: string }) => m.type === 'update.request')).toBe(false);
    a.agent.close();
    b.agent.close();
  });

  it('fails at once a node that drops its link before the file is down, an offline node and an agent that cannot update', async () => {
    const dropping = await onlineAgent('upd-drop');
    const old = await onlineAgent('upd-old-agent', '0.0.1', ['hardware']);
    await server.enroll('upd-offline');
    const { id } = (await start({ targets: { nodes: ['upd-drop', 'upd-old-agent', 'upd-offline'] }, canary: false })).json();
    await dropping.agent.nextOf('update.request');
    status(dropping.agent, id, 'download', { progress: 0 });
    await waitFor(async () => (await getUpdate(id)).nodes[0]!.step === 'download', 5000, 'the download reported');
    dropping.agent.close();
    const u = await ended(id);
    expect(Object.fromEntries(u.nodes.map((n) => [n.name, [n.state, n.detail]]))).toEqual({
      'upd-drop': ['failed', 'the node disconnected during the download'],
      'upd-old-agent': ['failed', 'the agent on this node (0.0.1) cannot update itself: reinstall it once'],
      'upd-offline': ['failed', 'node upd-offline is offline'],
    });
    old.agent.close();
  });

  it('counts a node already on the shipped version as done without touching it', async () => {
    const { agent } = await onlineAgent('upd-current', SHIPPED_VERSION);
    const u = await ended((await start({ targets: { nodes: ['upd-current'] } })).json().id);
    expect(u.nodes[0]).toMatchObject({ state: 'done', step: 'healthy', detail: `already runs ${SHIPPED_VERSION}` });
    expect(agent.messages.some((m: { type: string }) => m.type === 'update.request')).toBe(false);
    agent.close();
  });

  it('pauses (no new node starts), resumes and cancels; an ended update cannot be paused', async () => {
    const nodes = await Promise.all(['upd-p1', 'upd-p2', 'upd-p3'].map((n) => onlineAgent(n)));
    const { id } = (await start({ targets: { nodes: ['upd-p1', 'upd-p2', 'upd-p3'] }, canary: false, max_parallel: 1 })).json();
    await nodes[0]!.agent.nextOf('update.request');
    expect((await server.api('POST', `/api/v1/agent-updates/${id}/pause`, {})).json().update.state).toBe('paused');
    status(nodes[0]!.agent, id, 'healthy');
    await waitFor(async () => (await getUpdate(id)).nodes[0]!.state === 'done', 5000, 'the first node done');
    expect((await getUpdate(id)).nodes.map((n) => [n.state, n.result])).toEqual([['done', 'updated'], ['pending', null], ['pending', null]]);
    expect((await server.api('POST', `/api/v1/agent-updates/${id}/resume`, {})).json().update.state).toBe('running');
    await nodes[1]!.agent.nextOf('update.request');
    const cancelled = (await server.api('POST', `/api/v1/agent-updates/${id}/cancel`, {})).json().update;
    expect(cancelled.state).toBe('cancelled');
    expect((await ended(id)).nodes.map((n) => [n.state, n.result])).toEqual([['done', 'updated'], ['cancelled', 'cancelled'], ['cancelled', 'cancelled']]);
    const again = await server.api('POST', `/api/v1/agent-updates/${id}/pause`, {});
    expect([again.statusCode, again.json().error.code]).toEqual([409, 'conflict']);
    for (const n of nodes) n.agent.close();
  });

  it('refuses bad bodies, unknown targets and ids with clear errors, and viewers', async () => {
    expect((await start({ targets: {} })).json().error).toEqual({ code: 'bad_request', message: 'no node matches these targets' });
    expect((await start({ targets: { all: true }, extra: 1 })).statusCode).toBe(400);
    expect((await start({ targets: { nodes: ['nope'] } })).statusCode).toBe(404);
    expect((await start({ targets: { all: true }, max_parallel: 0 })).statusCode).toBe(400);
    expect((await server.api('GET', '/api/v1/agent-updates/nope')).statusCode).toBe(404);
    expect((await server.api('POST', '/api/v1/agent-updates/nope/cancel', {})).statusCode).toBe(404);
    await server.app.users.create('upd-viewer', await hashPassword('viewer-password'), 'viewer');
    const login = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'upd-viewer', password: 'viewer-password' } });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const viewer = await server.app.inject({ method: 'POST', url: '/api/v1/agent-updates', headers: { cookie }, payload: { targets: { all: true } } });
    expect(viewer.statusCode).toBe(403);
  });
});

describe('agent updates across a server restart', () => {
  it('keeps ended updates, and ends the one the restart interrupted, saying so', async () => {
    const own = await startTestServer({ DVIC_UPDATE_NODE_TIMEOUT_S: '30' });
    try {
      const { config } = await own.enroll('upd-restart');
      const agent = await connectAgent({ url: own.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['hardware', 'update'], hello: { agent_version: '0.0.1' } });
      const first = (await own.api('POST', '/api/v1/agent-updates', { targets: { nodes: ['upd-restart'] } })).json().id;
      const request = await agent.nextOf('update.request');
      agent.send({ type: 'update.status', data: { update_id: first, version: request.data.version, step: 'healthy' } });
      await waitFor(async () => (await own.api('GET', `/api/v1/agent-updates/${first}`)).json().update.state === 'done', 5000, 'the first update done');
      const second = (await own.api('POST', '/api/v1/agent-updates', { targets: { nodes: ['upd-restart'] }, force: true })).json().id;
      await agent.nextOf('update.request');
      await own.restart();
      const kept = (await own.api('GET', `/api/v1/agent-updates/${first}`)).json().update;
      expect(kept).toMatchObject({ state: 'done', nodes: [{ name: 'upd-restart', state: 'done', result: 'updated' }] });
      const interrupted = (await own.api('GET', `/api/v1/agent-updates/${second}`)).json().update;
      expect(interrupted).toMatchObject({ state: 'failed', nodes: [{ state: 'failed', result: 'failed', detail: 'the server restarted during the update: see the node\'s agent version' }] });
      expect(interrupted.finished_at).toEqual(expect.any(Number));
      expect((await own.api('GET', '/api/v1/agent-updates')).json().updates.map((u: AgentUpdateView) => u.id)).toEqual([second, first]);
    } finally {
      await own.close();
    }
  });
});
