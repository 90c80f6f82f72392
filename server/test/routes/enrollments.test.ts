import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { EnrollmentView } from '@dvic/protocol';
import { hashPassword } from '../../src/services/passwords.js';
import { LiveRecorder } from '../support/live-recorder.js';
import { sshTarget } from '../support/ssh-target.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

let server: TestServer;
beforeEach(async () => { server = await startTestServer(); });
afterEach(async () => { vi.useRealTimers(); await server.close(); });

const exchange = (token: string, hostname = 'pi-7') =>
  server.app.inject({ method: 'POST', url: '/api/v1/enrollment-tokens/exchange', payload: { token, hostname } });

describe('install links', () => {
  it('exchanges a token once per use for a node named after the machine, then refuses it as used up', async () => {
    const res = await server.api('POST', '/api/v1/enrollment-tokens', { max_uses: 3, labels: { room: 'a' } });
    expect(res.statusCode).toBe(201);
    const { secret, command } = res.json<{ secret: string; command: string }>();
    expect(command).toBe(`curl -fsSL http://localhost:80/install.sh | sudo sh -s -- --token ${secret}`);
    const one = await exchange(secret);
    expect(one.statusCode).toBe(201);
    const config = one.json<{ node_id: string; private_key: string; server_url: string }>();
    expect(config.private_key).toContain('PRIVATE KEY');
    const two = await exchange(secret, 'pi-7; rm -rf /');
    expect((await exchange(secret)).statusCode).toBe(201); // the same name again: made unique
    const nodes = (await server.api('GET', '/api/v1/nodes')).json<{ nodes: { name: string; labels: object }[] }>().nodes;
    expect(nodes.map((n) => n.name).sort()).toEqual(['pi-7', expect.stringMatching(/^pi-7-[0-9a-f]{6}$/), 'pi-7rm-rf']);
    expect(two.statusCode).toBe(201);
    expect(nodes.every((n) => JSON.stringify(n.labels) === '{"room":"a"}')).toBe(true);
    const third = await exchange(secret);
    expect(third.statusCode).toBe(403);
    expect(third.json().error.message).toBe('this install token is used up (3 of 3 uses): ask for a new install link');
    expect((await exchange('dvin_nope')).json().error.message).toBe('unknown install token: ask for a new install link');
    // The audit log keeps the use, not the token.
    const audit = JSON.stringify((await server.api('GET', '/api/v1/audit?limit=50')).json());
    expect(audit).toContain('enrollment-token.exchange');
    expect(audit).not.toContain(secret);
  });

  it('refuses an expired token, saying when it expired', async () => {
    const { secret, token } = (await server.api('POST', '/api/v1/enrollment-tokens', { expires_in_s: 60 })).json<{ secret: string; token: { expires_at: number } }>();
    vi.useFakeTimers({ now: token.expires_at + 1, toFake: ['Date'] });
    const res = await exchange(secret);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.message).toBe(`this install token expired at ${new Date(token.expires_at).toISOString()}: ask for a new install link`);
  });

  it('serves install.sh with this server filled in, and the agent it downloads', async () => {
    const script = await server.app.inject({ method: 'GET', url: '/install.sh', headers: { host: 'lab.example:8080' } });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toContain('text/x-shellscript');
    expect(script.body).toMatch(/^DVIC_SERVER="http:\/\/lab\.example:8080"$/m);
    const hostile = await server.app.inject({ method: 'GET', url: '/install.sh', headers: { host: 'x$(reboot)' } });
    expect(hostile.statusCode).toBe(400);
    const agent = await server.app.inject({ method: 'GET', url: '/install/dvic_agent.py' });
    expect(agent.body).toContain('class Tunnels(Feature)');
  });
});

describe('POST /api/v1/enrollments validation', () => {
  it('refuses bad input with 400 and an unknown source node with 404', async () => {
    const base = { name: 'pi', host: '10.0.0.7', username: 'pi', password: 'x', via: 'server' };
    for (const body of [{ ...base, host: '10.0.0.7;reboot' }, { ...base, username: '-oProxyCommand=x' }, { ...base, password: undefined },
      { ...base, private_key: 'k' }, { ...base, accept_host_key: 'MD5:aa' }, { ...base, port: 70000 }, { ...base, extra: 1 }]) {
      const res = await server.api('POST', '/api/v1/enrollments', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
    expect((await server.api('POST', '/api/v1/enrollments', { ...base, via: 'nosuchnode' })).statusCode).toBe(404);
    await server.enroll('taken');
    const taken = await server.api('POST', '/api/v1/enrollments', { ...base, name: 'taken' });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().error.message).toBe('a node named "taken" already exists');
    expect((await server.api('GET', '/api/v1/enrollments/5f0c2a57-5a2d-4d4b-9a34-6c43c0a7b6b1')).statusCode).toBe(404);
    expect((await server.api('POST', '/api/v1/enrollments/5f0c2a57-5a2d-4d4b-9a34-6c43c0a7b6b1/accept')).statusCode).toBe(404);
  });
});

describe('an enrollment the server restart interrupted', () => {
  it('fails at its step, saying to retry, and never runs on without its password', async () => {
    // A port that accepts and never answers: the SSH handshake is still waiting when the server restarts.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const res = await server.api('POST', '/api/v1/enrollments', { name: 'pi', host: '127.0.0.1', port, username: 'pi', password: 'x', via: 'server' });
      const { id } = res.json<{ enrollment: { id: string } }>().enrollment;
      const state = async () => (await server.api('GET', `/api/v1/enrollments/${id}`)).json<{ enrollment: EnrollmentView }>().enrollment;
      await waitFor(async () => (await state()).steps.find((s) => s.name === 'ssh_connect')?.status === 'running', 10_000, 'the SSH handshake under way');
      await server.restart();
      const view = await state();
      expect(view.state).toBe('failed');
      expect(view.error).toEqual({ step: 'ssh_connect', message: 'the server restarted during this enrollment: retry it (POST .../retry with the password)', output: null });
    } finally {
      silent.close();
    }
  });
});

describe('a host key nobody confirmed', () => {
  const state = async (id: string) => (await server.api('GET', `/api/v1/enrollments/${id}`)).json<{ enrollment: EnrollmentView }>().enrollment;
  const settled = (id: string) => waitFor(async () => { const v = await state(id); return v.state !== 'running' && v; }, 15_000, 'the enrollment to stop');
  const body = (port: number) => ({ name: 'pi', host: '127.0.0.1', port, username: 'pi', password: 'pw', via: 'server' });

  it('is shown again on a retry after a restart, never trusted', async () => {
    const target = await sshTarget();
    try {
      const { id } = (await server.api('POST', '/api/v1/enrollments', body(target.port))).json<{ enrollment: { id: string } }>().enrollment;
      const shown = await settled(id);
      expect(shown.state).toBe('awaiting_host_key');
      expect(shown.host_key_fingerprint).toMatch(/^SHA256:/);
      await server.restart();
      expect((await state(id)).state).toBe('failed');
      expect((await server.api('POST', `/api/v1/enrollments/${id}/retry`, { password: 'pw' })).statusCode).toBe(200);
      const again = await settled(id);
      expect(again.state).toBe('awaiting_host_key');
      expect(again.steps.find((s) => s.name === 'authenticate')?.status).toBe('pending');
    } finally {
      target.close();
    }
  });

  it('once accepted, is carried into a retry', async () => {
    const target = await sshTarget();
    try {
      const { id } = (await server.api('POST', '/api/v1/enrollments', body(target.port))).json<{ enrollment: { id: string } }>().enrollment;
      expect((await settled(id)).state).toBe('awaiting_host_key');
      expect((await server.api('POST', `/api/v1/enrollments/${id}/accept`, {})).statusCode).toBeLessThan(300);
      const failed = await settled(id);
      expect(failed.error?.step).toBe('authenticate');
      await server.api('POST', `/api/v1/enrollments/${id}/retry`, { password: 'pw' });
      const again = await settled(id);
      expect(again.state).toBe('failed');
      expect(again.error?.step).toBe('authenticate');
    } finally {
      target.close();
    }
  });

  it('fails the enrollment when nobody confirms it in time, saying to retry with the password', async () => {
    const target = await sshTarget();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: true });
    try {
      const { id } = (await server.api('POST', '/api/v1/enrollments', body(target.port))).json<{ enrollment: { id: string } }>().enrollment;
      expect((await settled(id)).state).toBe('awaiting_host_key');
      await vi.advanceTimersByTimeAsync(15 * 60_000 + 1000);
      const view = await state(id);
      expect(view.state).toBe('failed');
      expect(view.error?.step).toBe('ssh_connect');
      expect(view.error?.message).toMatch(/host key was not confirmed within 15 min: retry it \(POST \.\.\.\/retry with the password\)/);
    } finally {
      vi.useRealTimers();
      target.close();
    }
  });
});

describe('enrollment progress on the live stream', () => {
  it('goes to admins only, never to viewers', async () => {
    await server.app.users.create('watcher', await hashPassword('watcher-password'), 'viewer');
    const login = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'watcher', password: 'watcher-password' } });
    const viewerCookie = String(login.headers['set-cookie']).split(';')[0]!;
    const open = async (cookie: string) => {
      const socket = new WebSocket(server.liveUrl, { headers: { cookie } });
      const recorder = new LiveRecorder(socket);
      await new Promise((resolve) => socket.on('open', resolve));
      return { socket, recorder };
    };
    const admin = await open(server.cookie);
    const viewer = await open(viewerCookie);
    try {
      await server.api('POST', '/api/v1/enrollments', { name: 'pi', host: '127.0.0.1', port: 1, username: 'pi', password: 'x', via: 'server' });
      await waitFor(() => admin.recorder.all('enrollment.updated').length > 0, 10_000, 'the admin to see the enrollment');
      await server.enroll('marker'); // a node event after it: the viewer has had time to get everything before
      await waitFor(() => viewer.recorder.all('node.updated').length > 0, 10_000, 'the viewer to see the new node');
      expect(viewer.recorder.all('enrollment.updated')).toEqual([]);
    } finally {
      admin.socket.close();
      viewer.socket.close();
    }
  });
});
