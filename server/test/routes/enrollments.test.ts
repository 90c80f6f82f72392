import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EnrollmentView } from '@dvic/protocol';
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
