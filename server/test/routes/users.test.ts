import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
beforeEach(async () => { server = await startTestServer(); });
afterEach(async () => { await server.close(); });

interface UserView { id: number; username: string; role: string; disabled: boolean; created_at: number; last_login_at: number | null }

const login = (username: string, password: string) =>
  server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password } });
const cookieOf = async (username: string, password: string) => String((await login(username, password)).headers['set-cookie']).split(';')[0]!;
const add = async (username: string, role = 'operator', password = `${username}-password`) => {
  const res = await server.api('POST', '/api/v1/users', { username, password, role });
  expect(res.statusCode, JSON.stringify(res.json())).toBe(201);
  return res.json().user as UserView;
};
const audit = async (action: string) => (await server.api('GET', `/api/v1/audit?action=${action}`)).json().entries;

describe('users (admin)', () => {
  it('adds, lists, changes the role of, disables, enables and removes users, each change audited', async () => {
    const before = Date.now();
    const olive = await add('olive', 'operator');
    expect(olive).toMatchObject({ username: 'olive', role: 'operator', disabled: false, last_login_at: null });
    expect(olive.created_at).toBeGreaterThanOrEqual(before);
    expect((await login('olive', 'olive-password')).statusCode).toBe(200);
    const list = (await server.api('GET', '/api/v1/users')).json().users as UserView[];
    expect(list.map((u) => [u.username, u.role])).toEqual([['admin', 'admin'], ['olive', 'operator']]);
    expect(list[1]!.last_login_at).toBeGreaterThanOrEqual(before);

    expect((await server.api('PATCH', `/api/v1/users/${olive.id}`, { role: 'viewer' })).json().user.role).toBe('viewer');
    expect((await server.api('PATCH', `/api/v1/users/${olive.id}`, { disabled: true })).json().user.disabled).toBe(true);
    const refused = await login('olive', 'olive-password');
    expect(refused.statusCode).toBe(401);
    expect((await server.api('PATCH', `/api/v1/users/${olive.id}`, { disabled: false })).json().user.disabled).toBe(false);
    expect((await login('olive', 'olive-password')).statusCode).toBe(200);
    expect((await server.api('DELETE', `/api/v1/users/${olive.id}`)).statusCode).toBe(200);
    expect((await login('olive', 'olive-password')).statusCode).toBe(401);
    expect((await server.api('DELETE', `/api/v1/users/${olive.id}`)).statusCode).toBe(404);

    expect((await audit('user.create'))[0]).toMatchObject({ username: 'admin', outcome: 'ok', details: { body: { username: 'olive', password: '[redacted]', role: 'operator' }, user_id: olive.id } });
    expect((await audit('user.update')).map((e: { details: { body: object } }) => e.details.body)).toEqual([{ disabled: false }, { disabled: true }, { role: 'viewer' }]);
    expect((await audit('user.delete')).map((e: { target: string; outcome: string }) => [e.target, e.outcome])).toEqual([[String(olive.id), 'failed'], [String(olive.id), 'ok']]);
  });

  it('refuses to remove, disable or demote the last admin (409), and allows it once there is another', async () => {
    const admin = (await server.api('GET', '/api/v1/users')).json().users[0] as UserView;
    for (const [method, body] of [['DELETE', undefined], ['PATCH', { disabled: true }], ['PATCH', { role: 'operator' }]] as const) {
      const res = await server.api(method, `/api/v1/users/${admin.id}`, body);
      expect(res.statusCode, `${method} ${JSON.stringify(body)}`).toBe(409);
      expect(res.json().error.message).toMatch(/last admin/);
    }
    const second = await add('ada', 'admin');
    await server.api('PATCH', `/api/v1/users/${second.id}`, { disabled: true });
    expect((await server.api('PATCH', `/api/v1/users/${admin.id}`, { role: 'operator' })).statusCode).toBe(409); // a disabled admin does not count
    await server.api('PATCH', `/api/v1/users/${second.id}`, { disabled: false });
    expect((await server.api('PATCH', `/api/v1/users/${admin.id}`, { role: 'operator' })).statusCode).toBe(200);
  });

  it('refuses a short password with a clear 400, a taken username with 409 and unknown fields with 400', async () => {
    const short = await server.api('POST', '/api/v1/users', { username: 'sam', password: 'short', role: 'viewer' });
    expect(short.statusCode).toBe(400);
    expect(short.json().error.message).toMatch(/password must NOT have fewer than 8 characters/);
    await add('sam');
    expect((await server.api('POST', '/api/v1/users', { username: 'sam', password: 'long enough', role: 'viewer' })).statusCode).toBe(409);
    expect((await server.api('POST', '/api/v1/users', { username: 'tom', password: 'long enough', role: 'root' })).statusCode).toBe(400);
    expect((await server.api('POST', '/api/v1/users', { username: 'tom', password: 'long enough', role: 'viewer', admin: true })).statusCode).toBe(400);
    expect((await server.api('PATCH', '/api/v1/users/1', {})).statusCode).toBe(400);
    expect((await server.api('PATCH', '/api/v1/users/1', { password_hash: 'x' })).statusCode).toBe(400);
  });

  it('resets a password: the old one stops working, the new one works, the sessions end', async () => {
    const user = await add('rita');
    const cookie = await cookieOf('rita', 'rita-password');
    const res = await server.api('POST', `/api/v1/users/${user.id}/password`, { password: 'rita-new-password' });
    expect(res.statusCode).toBe(200);
    expect((await server.app.inject({ url: '/api/v1/auth/me', headers: { cookie } })).statusCode).toBe(401);
    expect((await login('rita', 'rita-password')).statusCode).toBe(401);
    expect((await login('rita', 'rita-new-password')).statusCode).toBe(200);
    expect((await audit('user.password-reset'))[0].details.body).toEqual({ password: '[redacted]' });
  });

  it('keeps no password in clear anywhere in the database, the audit log included', async () => {
    const user = await add('pat', 'viewer', 'pat-secret-password-1');
    await server.api('POST', `/api/v1/users/${user.id}/password`, { password: 'pat-secret-password-2' });
    const patCookie = await cookieOf('pat', 'pat-secret-password-2');
    await server.app.inject({ method: 'POST', url: '/api/v1/auth/password', headers: { cookie: patCookie }, payload: { current_password: 'pat-secret-password-2', new_password: 'pat-secret-password-3' } });
    server.app.db.pragma('wal_checkpoint(TRUNCATE)');
    for (const file of fs.readdirSync(server.dataDir).filter((f) => f.startsWith('dvic.sqlite'))) {
      const bytes = fs.readFileSync(path.join(server.dataDir, file)).toString('latin1');
      for (const secret of ['pat-secret-password-1', 'pat-secret-password-2', 'pat-secret-password-3', ADMIN_PASSWORD]) expect(bytes, file).not.toContain(secret);
    }
  });
});

describe('your own password', () => {
  it('changes with the current one; a wrong current password is 403, audited and counted as a failed sign-in', async () => {
    await add('cleo', 'viewer');
    const cookie = await cookieOf('cleo', 'cleo-password');
    const change = (current: string, next: string) => server.app.inject({
      method: 'POST', url: '/api/v1/auth/password', headers: { cookie }, payload: { current_password: current, new_password: next },
    });
    const wrong = await change('not-it', 'cleo-new-password');
    expect(wrong.statusCode).toBe(403);
    expect(wrong.json().error.code).toBe('invalid_credentials');
    expect((await audit('auth.password'))[0]).toMatchObject({ username: 'cleo', outcome: 'denied', details: { body: { current_password: '[redacted]', new_password: '[redacted]' } } });
    expect((await change('cleo-password', 'short')).statusCode).toBe(400);
    const ok = await change('cleo-password', 'cleo-new-password');
    expect(ok.statusCode).toBe(200);
    expect(ok.json().user.username).toBe('cleo');
    expect((await login('cleo', 'cleo-new-password')).statusCode).toBe(200);
    for (let i = 0; i < 12; i++) await change('still-wrong', 'whatever-long');
    expect((await change('cleo-new-password', 'another-password')).statusCode).toBe(429);
  });

  it('is the only user route a viewer may call', async () => {
    await add('vera', 'viewer');
    const cookie = await cookieOf('vera', 'vera-password');
    for (const [method, url] of [['GET', '/api/v1/users'], ['POST', '/api/v1/users'], ['PATCH', '/api/v1/users/1'], ['DELETE', '/api/v1/users/1'], ['POST', '/api/v1/users/1/password']] as const) {
      const res = await server.app.inject({ method, url, headers: { cookie }, ...(method === 'GET' ? {} : { payload: { password: 'x'.repeat(10), role: 'admin', username: 'x' } }) });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
    }
  });
});
