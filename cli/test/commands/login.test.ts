import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD } from '../../../server/test/support/test-server.js';
import { serverForTests, tempHome } from '../support/cli-server.js';
import { dvic } from '../support/run-cli.js';

const server = serverForTests();

const home = () => ({ HOME: tempHome(), NO_COLOR: '1' });

describe('dvic login', () => {
  it('stores a working API token in ~/.config/dvic/config.json, readable by its owner only', async () => {
    const env = home();
    const login = await dvic(['login', server().server.baseUrl, '--password-stdin'], env, `${ADMIN_PASSWORD}\n`);
    expect(login.code, login.stderr).toBe(0);
    const file = path.join(env.HOME, '.config/dvic/config.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ url: server().server.baseUrl, token: expect.stringMatching(/^dvic_/) });
    expect((await dvic(['nodes'], env)).code).toBe(0);
  });

  it('refuses a wrong password with the server\'s message, exit code 1', async () => {
    const res = await dvic(['login', server().server.baseUrl, '--password-stdin'], home(), 'wrong\n');
    expect([res.code, res.stderr]).toEqual([1, 'dvic: sign-in refused: wrong username or password\n']);
  });

  it('reads a piped password when there is no terminal, and says so when there is none', async () => {
    const piped = await dvic(['login', server().server.baseUrl], home(), `${ADMIN_PASSWORD}\n`);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toMatch(/^Signed in to /);
    const none = await dvic(['login', server().server.baseUrl], home(), '');
    expect([none.code, none.stderr]).toEqual([2, 'dvic: no password: pipe it in, or use --password-stdin or DVIC_PASSWORD (see dvic login --help)\n']);
  });

  it('logs out by revoking the token: whoever still holds it is told to sign in again', async () => {
    const env = home();
    await dvic(['login', server().server.baseUrl, '--password-stdin'], env, `${ADMIN_PASSWORD}\n`);
    const { token } = JSON.parse(fs.readFileSync(path.join(env.HOME, '.config/dvic/config.json'), 'utf8')) as { token: string };
    expect(await dvic(['logout'], env)).toMatchObject({ code: 0, stdout: `Signed out of ${server().server.baseUrl}\n` });
    expect((await dvic(['nodes'], env)).stderr).toBe('dvic: not signed in: run dvic login <url>\n');
    const stale = await dvic(['nodes'], { ...home(), DVIC_URL: server().server.baseUrl, DVIC_TOKEN: token });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/^dvic: .+: run dvic login\n$/);
  });
});
