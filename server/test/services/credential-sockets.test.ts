// Ending a credential (sign-out, revoked or expired token, expired session, disabled or removed
// user, password change or reset) closes every socket opened with it at once, with 4401.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { CloseCode } from '@dvic/protocol';
import { hashPassword } from '../../src/services/passwords.js';
import { resetAdmin } from '../../src/services/admin-reset.js';
import { newSecret, sha256Hex } from '../../src/services/tokens.js';
import { connectAgent } from '../support/simulated-agent.mjs';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';
import { closed, upgrade } from '../support/upgrade.js';

let server: TestServer;
beforeEach(async () => { server = await startTestServer(); });
afterEach(async () => { await server.close(); });

type Agent = Awaited<ReturnType<typeof connectAgent>>;

async function terminalNode(): Promise<{ agent: Agent; nodeId: string }> {
  const { config } = await server.enroll(`pi-${Math.random().toString(36).slice(2, 8)}`);
  const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['hardware', 'exec', 'terminal'] });
  return { agent, nodeId: config.node_id };
}

/** Opens a socket with these credentials, and starts listening for its close. */
async function open(url: string, headers: Record<string, string>) {
  const res = await upgrade(url, headers);
  if (res.status !== 101) throw new Error(`upgrade refused: ${res.status} ${JSON.stringify(res)}`);
  const socket = (res as { socket: WebSocket }).socket;
  return { socket, closed: closed(socket) };
}

const terminalUrl = (nodeId: string) => `${server.baseUrl.replace('http', 'ws')}/api/v1/nodes/${nodeId}/terminal`;

/** A live socket and a terminal (the agent got terminal.open) opened with these credentials. */
async function openBoth(headers: Record<string, string>, node: { agent: Agent; nodeId: string }) {
  const live = await open(server.liveUrl, headers);
  const terminal = await open(terminalUrl(node.nodeId), headers);
  const opened = await node.agent.nextOf('terminal.open');
  return { live, terminal, channel: opened.data.channel };
}

async function signIn(username: string, password: string): Promise<string> {
  const res = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password } });
  expect(res.statusCode).toBe(200);
  return String(res.headers['set-cookie']).split(';')[0]!;
}

async function addUser(username: string, role: 'viewer' | 'operator' | 'admin' = 'operator') {
  const res = await server.api('POST', '/api/v1/users', { username, password: `${username}-password`, role });
  expect(res.statusCode).toBe(201);
  return { id: res.json().user.id as number, cookie: await signIn(username, `${username}-password`) };
}

const ended = { code: CloseCode.sessionEnded, reason: expect.any(String) };

describe('sockets of ended credentials', () => {
  it('closes the live and terminal sockets of a session at once when it signs out, and ends the shell', async () => {
    const node = await terminalNode();
    const other = await signIn('admin', 'correct horse battery staple');
    const mine = await openBoth({ cookie: server.cookie }, node);
    const kept = await open(server.liveUrl, { cookie: other });
    expect((await server.api('POST', '/api/v1/auth/logout')).statusCode).toBe(204);
    expect(await mine.live.closed).toEqual({ code: CloseCode.sessionEnded, reason: 'signed out' });
    expect(await mine.terminal.closed).toEqual({ code: CloseCode.sessionEnded, reason: 'signed out' });
    const close = await node.agent.nextOf('terminal.close');
    expect(close.data.channel).toBe(mine.channel);
    expect(kept.socket.readyState).toBe(kept.socket.OPEN); // another session of the same user stays
    kept.socket.close();
    node.agent.close();
  });

  it('closes the sockets of a revoked API token, and only those', async () => {
    const node = await terminalNode();
    const created = (await server.api('POST', '/api/v1/tokens', { name: 'cli' })).json();
    const bearer = { authorization: `Bearer ${created.token}` };
    const follow = await openBoth(bearer, node);
    const session = await open(server.liveUrl, { cookie: server.cookie });
    expect((await server.api('DELETE', `/api/v1/tokens/${created.info.id}`)).statusCode).toBe(200);
    expect(await follow.live.closed).toEqual({ code: CloseCode.sessionEnded, reason: 'the API token was revoked' });
    expect(await follow.terminal.closed).toEqual({ code: CloseCode.sessionEnded, reason: 'the API token was revoked' });
    expect(session.socket.readyState).toBe(session.socket.OPEN);
    session.socket.close();
    node.agent.close();
  });

  for (const [what, change] of [
    ['disabled', (id: number) => server.api('PATCH', `/api/v1/users/${id}`, { disabled: true })],
    ['removed', (id: number) => server.api('DELETE', `/api/v1/users/${id}`)],
    ['given a new password by an admin', (id: number) => server.api('POST', `/api/v1/users/${id}/password`, { password: 'a brand new password' })],
    ['demoted', (id: number) => server.api('PATCH', `/api/v1/users/${id}`, { role: 'viewer' })],
  ] as const) {
    it(`closes every socket of a user who is ${what}`, async () => {
      const node = await terminalNode();
      const { id, cookie } = await addUser('oscar');
      const sockets = await openBoth({ cookie }, node);
      const admins = await open(server.liveUrl, { cookie: server.cookie });
      expect((await change(id)).statusCode).toBe(200);
      expect(await sockets.live.closed).toEqual(ended);
      expect(await sockets.terminal.closed).toEqual(ended);
      expect(admins.socket.readyState).toBe(admins.socket.OPEN);
      admins.socket.close();
      node.agent.close();
    });
  }

  it("closes the other sessions' sockets when a user changes their password, and keeps the one that changed it", async () => {
    const { cookie } = await addUser('olga');
    const second = await signIn('olga', 'olga-password');
    const here = await open(server.liveUrl, { cookie });
    const elsewhere = await open(server.liveUrl, { cookie: second });
    const res = await server.app.inject({
      method: 'POST', url: '/api/v1/auth/password', headers: { cookie }, payload: { current_password: 'olga-password', new_password: 'olga-new-password' },
    });
    expect(res.statusCode).toBe(200);
    expect(await elsewhere.closed).toEqual({ code: CloseCode.sessionEnded, reason: 'the password was changed: sign in again' });
    expect(here.socket.readyState).toBe(here.socket.OPEN);
    here.socket.close();
  });

  it('closes the sockets of a session and of a token when they expire', async () => {
    const admin = (await server.app.users.findByName('admin'))!;
    const secret = newSecret();
    await server.app.sessions.create(sha256Hex(secret), admin.id, 300);
    const session = await open(server.liveUrl, { cookie: `dvic_session=${secret}` });
    const token = (await server.api('POST', '/api/v1/tokens', { name: 'short', expires_at: Date.now() + 400 })).json().token;
    const follow = await open(server.liveUrl, { authorization: `Bearer ${token}` });
    expect(await session.closed).toEqual({ code: CloseCode.sessionEnded, reason: 'your session expired: sign in again' });
    expect(await follow.closed).toEqual({ code: CloseCode.sessionEnded, reason: 'the API token expired' });
  });

  it('closes the sockets of sessions ended outside the server (reset-admin) on its next check', async () => {
    const live = await open(server.liveUrl, { cookie: server.cookie });
    await resetAdmin(server.app.sql, 'reset password 1');
    expect(await server.app.credentialSockets.sweep()).toBe(1);
    expect(await live.closed).toEqual(ended);
  });

  it('tracks a socket while it is open and forgets it once it closes', async () => {
    await server.app.users.create('late', await hashPassword('late-password'), 'viewer');
    const cookie = await signIn('late', 'late-password');
    const live = await open(server.liveUrl, { cookie });
    await waitFor(() => server.app.credentialSockets.count === 1, 5000, 'registered');
    live.socket.close();
    await waitFor(() => server.app.credentialSockets.count === 0, 5000, 'forgotten');
  });
});
