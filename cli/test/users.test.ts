// `dvic users` and `dvic passwd`, run in-process against a real server on loopback.
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/main.js';
import type { Context } from '../src/context.js';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../../server/test/support/test-server.js';

let server: TestServer;
let adminToken: string;

beforeAll(async () => {
  server = await startTestServer();
  adminToken = (await server.api('POST', '/api/v1/tokens', { name: 'cli-test' })).json().token;
});
afterAll(async () => { await server.close(); });

/** Runs dvic with a token, piped stdin, and captured output. */
async function dvic(args: string[], stdin = '', token = adminToken) {
  let out = '';
  let err = '';
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (d) => { out += d; });
  stderr.on('data', (d) => { err += d; });
  const ctx: Context = {
    env: { DVIC_URL: server.baseUrl, DVIC_TOKEN: token }, stdout, stderr, stdin: Readable.from([stdin]),
    color: false, now: Date.now, onInterrupt: () => () => undefined,
  };
  const code = await main(args, ctx);
  return { code, stdout: out, stderr: err };
}

const login = (username: string, password: string) =>
  server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password } });

describe('dvic users', () => {
  it('adds a user with a password read from stdin, never from argv, and lists them', async () => {
    const added = await dvic(['users', 'add', 'nina', '--role', 'operator'], 'nina-password\n');
    expect(added, added.stderr).toMatchObject({ code: 0, stdout: 'Added nina (operator)\n' });
    expect((await login('nina', 'nina-password')).statusCode).toBe(200);
    const list = await dvic(['users', 'list']);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^USER\s+ROLE\s+STATE\s+LAST SIGN-IN\s+CREATED$/);
    expect(lines.find((l) => l.startsWith('nina'))).toMatch(/^nina\s+operator\s+enabled\s+\S+/);
    expect((await dvic(['users', 'add', 'nora', '--role', 'viewer', '--password', 'x'])).code).toBe(2);
  });

  it('changes a role, disables, enables, resets the password of and removes a user', async () => {
    await dvic(['users', 'add', 'otto', '--role', 'viewer'], 'otto-password\n');
    expect((await dvic(['users', 'role', 'otto', 'operator'])).stdout).toBe('otto (operator): role changed, their open sockets closed\n');
    expect((await dvic(['users', 'disable', 'otto'])).stdout).toBe('Disabled otto: their sessions and tokens ended\n');
    expect((await login('otto', 'otto-password')).statusCode).toBe(401);
    expect((await dvic(['users', 'enable', 'otto'])).code).toBe(0);
    expect((await dvic(['users', 'reset-password', 'otto'], 'otto-new-password\n')).stdout).toBe('New password set for otto: their sessions ended\n');
    expect((await login('otto', 'otto-new-password')).statusCode).toBe(200);
    expect((await dvic(['users', 'remove', 'otto'])).stdout).toBe('Removed otto\n');
    expect((await login('otto', 'otto-new-password')).statusCode).toBe(401);
  });

  it("says what the server refused in one line: the last admin, a short password, someone who isn't there, a viewer", async () => {
    const last = await dvic(['users', 'remove', 'admin']);
    expect([last.code, last.stderr]).toEqual([1, 'dvic: admin is the last admin: it cannot be removed (make another admin first)\n']);
    const short = await dvic(['users', 'add', 'pia', '--role', 'viewer'], 'short\n');
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/^dvic: body\/password must NOT have fewer than 8 characters\n$/);
    expect((await dvic(['users', 'disable', 'nobody'])).stderr).toBe('dvic: no user named nobody\n');
    expect((await dvic(['users', 'add', 'pia'])).code).toBe(2); // no role
    const viewerToken = (await server.api('POST', '/api/v1/tokens', { name: 'v', role: 'viewer' })).json().token;
    const refused = await dvic(['users', 'list'], '', viewerToken);
    expect([refused.code, refused.stderr]).toEqual([1, 'dvic: role viewer may not do this (needs admin)\n']);
  });
});

describe('dvic passwd', () => {
  it('changes your own password from the current one and the new one on stdin', async () => {
    await dvic(['users', 'add', 'quinn', '--role', 'viewer'], 'quinn-password\n');
    const token = (await server.app.inject({
      method: 'POST', url: '/api/v1/tokens', headers: { cookie: String((await login('quinn', 'quinn-password')).headers['set-cookie']).split(';')[0]! }, payload: { name: 'q' },
    })).json().token;
    const wrong = await dvic(['passwd'], 'not-it\nquinn-new-password\n', token);
    expect([wrong.code, wrong.stderr]).toEqual([1, 'dvic: the current password is wrong\n']);
    const ok = await dvic(['passwd'], 'quinn-password\nquinn-new-password\n', token);
    expect([ok.code, ok.stdout]).toEqual([0, 'Password changed for quinn; your other sessions ended\n']);
    expect((await login('quinn', 'quinn-new-password')).statusCode).toBe(200);
    expect((await login('admin', ADMIN_PASSWORD)).statusCode).toBe(200);
  });
});
