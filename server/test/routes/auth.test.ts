import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { hashPassword } from '../../src/services/passwords.js';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
beforeEach(async () => { server = await startTestServer({ DVIC_LOGIN_MAX_FAILURES: '3' }); });
afterEach(async () => { await server.close(); });

const login = (password: string, username = 'admin') =>
  server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password } });

describe('sign-in', () => {
  it('sets an HttpOnly SameSite=Strict session cookie that opens the API', async () => {
    const res = await login(ADMIN_PASSWORD);
    expect(res.statusCode).toBe(200);
    expect(res.json().user).toMatchObject({ id: 1, username: 'admin', role: 'admin', disabled: false });
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^dvic_session=[\w-]{40,};/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const me = await server.app.inject({ url: '/api/v1/auth/me', headers: { cookie: cookie.split(';')[0]! } });
    expect(me.json().user.username).toBe('admin');
  });

  it('answers a wrong password or an unknown user with 401 invalid_credentials', async () => {
    for (const res of [await login('wrong'), await login(ADMIN_PASSWORD, 'nobody')]) {
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('invalid_credentials');
      expect(res.headers['set-cookie']).toBeUndefined();
    }
  });

  it('refuses further attempts with 429 and Retry-After once failures pile up', async () => {
    for (let i = 0; i < 3; i++) expect((await login('wrong')).statusCode).toBe(401);
    const locked = await login(ADMIN_PASSWORD);
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error.code).toBe('too_many_attempts');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('counts attempts before checking the password: of 200 concurrent wrong guesses at most the limit are checked, the rest 429 at once', async () => {
    const guesses = await Promise.all(Array.from({ length: 200 }, (_, i) => login(`guess-${i}`)));
    const statuses = guesses.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(3);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(197);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
  });

  it('throttles a distributed guess at one user, from many addresses', async () => {
    const from = (ip: string, password: string) => server.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: ip, payload: { username: 'admin', password } });
    for (let i = 1; i <= 3; i++) expect((await from(`10.0.0.${i}`, 'wrong')).statusCode).toBe(401);
    const fresh = await from('10.0.0.99', ADMIN_PASSWORD);
    expect(fresh.statusCode).toBe(429);
  });

  it("is not reset by another user's success, and the right password after a lockout still waits", async () => {
    await server.app.users.create('mallory', await hashPassword('mallory-password'), 'viewer');
    expect((await login('wrong')).statusCode).toBe(401);
    expect((await login('wrong')).statusCode).toBe(401);
    expect((await login('mallory-password', 'mallory')).statusCode).toBe(200);
    expect((await login('wrong', 'bob')).statusCode).toBe(401);
    const locked = await login(ADMIN_PASSWORD);
    expect(locked.statusCode).toBe(429);
  });

  it('says until when in the 429: Retry-After, error.retry_at and the time in the message', async () => {
    for (let i = 0; i < 3; i++) await login('wrong');
    const before = Date.now();
    const locked = await login(ADMIN_PASSWORD);
    const { error } = locked.json();
    expect(error.code).toBe('too_many_attempts');
    expect(error.retry_at).toBeGreaterThan(before);
    expect(error.retry_at).toBeLessThanOrEqual(before + 600_000);
    const seconds = Number(locked.headers['retry-after']);
    expect(Math.abs(seconds - (error.retry_at - before) / 1000)).toBeLessThan(5);
    expect(error.message).toContain(new Date(error.retry_at).toISOString().slice(11, 19));
    expect(error.message).toContain(`in ${seconds} s`);
  });

  it('returns the real account state: disabled and the time of the last sign-in', async () => {
    const before = Date.now();
    const res = await login(ADMIN_PASSWORD);
    expect(res.json().user.last_login_at).toBeGreaterThanOrEqual(before);
    const me = (await server.api('GET', '/api/v1/auth/me')).json().user;
    expect(me).toMatchObject({ username: 'admin', disabled: false });
    expect(me.last_login_at).toBeGreaterThanOrEqual(before);
  });

  it('marks the session cookie Secure behind a TLS reverse proxy only when DVIC_TRUST_PROXY trusts it', async () => {
    const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7' };
    const untrusted = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: viaProxy, payload: { username: 'admin', password: ADMIN_PASSWORD } });
    expect(String(untrusted.headers['set-cookie'])).not.toMatch(/Secure/);
    for (const trust of ['1', 'true', '127.0.0.1,::1']) {
      const proxied = await startTestServer({ DVIC_TRUST_PROXY: trust });
      try {
        const res = await proxied.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: '127.0.0.1', headers: viaProxy, payload: { username: 'admin', password: ADMIN_PASSWORD } });
        expect(String(res.headers['set-cookie']), trust).toMatch(/; Secure/);
        expect(res.headers['strict-transport-security']).toMatch(/max-age/);
        await proxied.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: '127.0.0.1', headers: viaProxy, payload: { username: 'admin', password: 'wrong' } });
        const failed = (await proxied.api('GET', '/api/v1/audit?action=login&outcome=denied')).json().entries[0];
        expect(failed.source_ip).toBe('203.0.113.7'); // the client, as the proxy saw it
      } finally {
        await proxied.close();
      }
    }
  }, 90_000); // three more servers start in this test

  it('refuses malformed and incomplete login bodies with a clear 400', async () => {
    const bad = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"username":' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('invalid_json');
    const missing = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'admin' } });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.code).toBe('bad_request');
  });

  it('stores the password as a scrypt hash, never in clear', () => {
    const row = server.app.db.prepare('SELECT password_hash FROM users').get() as { password_hash: string };
    expect(row.password_hash).toMatch(/^scrypt\$\d+\$8\$1\$/);
    expect(row.password_hash).not.toContain(ADMIN_PASSWORD);
  });

  it('ends the session on logout', async () => {
    expect((await server.api('POST', '/api/v1/auth/logout')).statusCode).toBe(204);
    const after = await server.api('GET', '/api/v1/auth/me');
    expect(after.statusCode).toBe(401);
    expect(after.json().error.message).toMatch(/session expired/);
  });
});

describe('API tokens', () => {
  it('authenticate as Bearer until revoked, and are stored only as hashes', async () => {
    const created = await server.api('POST', '/api/v1/tokens', { name: 'ci' });
    expect(created.statusCode).toBe(201);
    const { token, info } = created.json();
    expect(token).toMatch(/^dvic_/);
    const bearer = { authorization: `Bearer ${token}` };
    expect((await server.app.inject({ url: '/api/v1/nodes', headers: bearer })).statusCode).toBe(200);
    const stored = JSON.stringify(server.app.db.prepare('SELECT * FROM api_tokens').all());
    expect(stored).not.toContain(token);
    const listed = (await server.api('GET', '/api/v1/tokens')).json().tokens;
    expect(listed[0]).toMatchObject({ id: info.id, name: 'ci', revoked_at: null });
    expect(listed[0].last_used_at).toBeGreaterThan(0);

    expect((await server.api('DELETE', `/api/v1/tokens/${info.id}`)).statusCode).toBe(200);
    const refused = await server.app.inject({ url: '/api/v1/nodes', headers: bearer });
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.code).toBe('unauthorized');
    expect((await server.api('DELETE', `/api/v1/tokens/${info.id}`)).statusCode).toBe(404);
  });
});

describe('every protected route', () => {
  it('answers 401 without credentials, and with a forged cookie or token', async () => {
    const doc = (await server.api('GET', '/api/v1/openapi.json')).json();
    // Public routes (x-role public: sign-in, the install token exchange, device keepalives) carry their own credential.
    const routes = Object.entries(doc.paths as Record<string, Record<string, { 'x-role'?: string }>>)
      .flatMap(([p, methods]) => Object.entries(methods).filter(([, op]) => op['x-role'] !== 'public').map(([m]) => [m.toUpperCase(), p.replace(/\{[^}]+\}/g, '1')] as const));
    routes.push(['GET', '/api/v1/openapi.json']);
    expect(routes.length).toBeGreaterThanOrEqual(10);
    for (const [method, url] of routes) {
      for (const headers of [{}, { cookie: 'dvic_session=forged' }, { authorization: 'Bearer dvic_forged' }]) {
        const res = await server.app.inject({ method: method as 'GET', url, headers, payload: method === 'GET' ? undefined : {} });
        expect(res.statusCode, `${method} ${url}`).toBe(401);
        expect(res.json().error.code).toBe('unauthorized');
      }
    }
  });

  it('refuses the live stream upgrade without a session', async () => {
    const ws = new WebSocket(server.liveUrl);
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
    });
    expect(status).toBe(401);
  });
});
