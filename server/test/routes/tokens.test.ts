import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/services/passwords.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
beforeEach(async () => { server = await startTestServer(); });
afterEach(async () => { await server.close(); });

async function cookieOf(username: string, role: 'viewer' | 'operator') {
  await server.app.users.create(username, await hashPassword(`${username}-password`), role);
  const login = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password: `${username}-password` } });
  return String(login.headers['set-cookie']).split(';')[0]!;
}

const as = (cookie: string, method: 'GET' | 'POST', url: string, payload?: object) =>
  server.app.inject({ method, url, headers: { cookie }, ...(payload ? { payload } : {}) });
const bearer = (token: string, method: 'GET' | 'POST', url: string, payload?: object) =>
  server.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });

describe('API tokens with a role', () => {
  it('acts with the role it was given, at most its creator’s', async () => {
    const created = await server.api('POST', '/api/v1/tokens', { name: 'dashboard-wall', role: 'viewer' });
    expect(created.statusCode).toBe(201);
    expect(created.json().info).toMatchObject({ role: 'viewer', expires_at: null });
    const { token } = created.json();
    expect((await bearer(token, 'GET', '/api/v1/nodes')).statusCode).toBe(200);
    expect((await bearer(token, 'GET', '/api/v1/server/stats')).statusCode).toBe(403);
    expect((await bearer(token, 'POST', '/api/v1/nodes', { name: 'sneaky' })).statusCode).toBe(403);
  });

  it('refuses a role above the creator’s with 400, also when the creator is itself a token', async () => {
    const cookie = await cookieOf('olive', 'operator');
    const above = await as(cookie, 'POST', '/api/v1/tokens', { name: 'x', role: 'admin' });
    expect(above.statusCode).toBe(400);
    expect(above.json().error.message).toMatch(/role admin is above yours \(operator\)/);
    const viewerToken = (await server.api('POST', '/api/v1/tokens', { name: 'v', role: 'viewer' })).json().token;
    const escalate = await bearer(viewerToken, 'POST', '/api/v1/tokens', { name: 'y', role: 'operator' });
    expect(escalate.statusCode).toBe(400);
    const inherited = await bearer(viewerToken, 'POST', '/api/v1/tokens', { name: 'z' });
    expect(inherited.json().info.role).toBe('viewer');
  });

  it('refuses an expired token, and shows role and expiry in the list', async () => {
    const soon = Date.now() + 60_000;
    const created = (await server.api('POST', '/api/v1/tokens', { name: 'short', expires_at: soon })).json();
    const inDays = (await server.api('POST', '/api/v1/tokens', { name: 'week', role: 'operator', expires_in_days: 7 })).json();
    expect(inDays.info.expires_at).toBeGreaterThan(Date.now() + 6.9 * 86_400_000);
    const listed = (await server.api('GET', '/api/v1/tokens')).json().tokens;
    expect(listed).toEqual([
      expect.objectContaining({ name: 'short', role: 'admin', expires_at: soon }),
      expect.objectContaining({ name: 'week', role: 'operator', expires_at: inDays.info.expires_at }),
    ]);
    expect((await bearer(created.token, 'GET', '/api/v1/nodes')).statusCode).toBe(200);
    server.app.db.prepare('UPDATE api_tokens SET expires_at = ? WHERE id = ?').run(Date.now() - 1, created.info.id);
    const refused = await bearer(created.token, 'GET', '/api/v1/nodes');
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.message).toMatch(/expired/);
  });

  it('refuses an expiry in the past, both kinds of expiry at once, and unknown fields', async () => {
    for (const body of [{ name: 'a', expires_at: Date.now() - 1000 }, { name: 'b', expires_at: Date.now() + 1e6, expires_in_days: 1 }, { name: 'c', expires_in_days: 0 }, { name: 'd', scope: 'all' }]) {
      const res = await server.api('POST', '/api/v1/tokens', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
  });
});
