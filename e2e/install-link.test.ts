// Install links end to end: the one-line command an admin copies, run as root on a real target (a
// Debian tree booted by systemd-nspawn, systemd as PID 1): curl | sh with a token, a node appears;
// running install.sh again changes nothing; --uninstall removes everything it installed.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { call, getNode, session, type Api } from './support/api.js';
import { startServer, stopAll, waitFor, type ServerProcess } from './support/processes.js';
import { bootTarget, canBootTargets, debianTree, type Target } from './support/target-host.mjs';

const missing = canBootTargets();
if (missing && process.env.CI === 'true') throw new Error(`install link e2e cannot run: ${missing}`);

let server: ServerProcess;
let api: Api;
const targets: Target[] = [];

beforeAll(async () => {
  if (missing) return;
  debianTree();
  server = await startServer();
  ({ api } = await session(server.baseUrl));
}, 600_000);
afterEach(async () => { for (const t of targets.splice(0)) await t.stop(); });
afterAll(async () => { await stopAll(); });

const INSTALLED = ['opt/dvic-agent/dvic_agent.py', 'etc/dvic-agent/config.json', 'etc/systemd/system/dvic-agent.service', 'var/lib/dvic-agent'];

describe.skipIf(missing)('install links', () => {
  it('installs a live node with the one-line command, idempotently, and uninstalls it', async () => {
    const t = await bootTarget();
    targets.push(t);
    const link = await call(api.POST('/api/v1/enrollment-tokens', { body: { max_uses: 1, labels: { room: 'hall' } } }));
    expect(link.command).toBe(`curl -fsSL ${server.baseUrl}/install.sh | sudo sh -s -- --token ${link.secret}`);
    expect(link.wget_command).toBe(`wget -qO- ${server.baseUrl}/install.sh | sudo sh -s -- --token ${link.secret}`);
    expect(link.token).toMatchObject({ max_uses: 1, uses: 0, labels: { room: 'hall' } });

    // As root already: the same line without sudo (minbase has sudo, but no tty for it here).
    const first = t.run(link.command.replace('| sudo sh', '| sh'));
    expect(first.status, first.output).toBe(0);
    expect(first.output).toContain('dvic-agent.service is running');
    const node = await waitFor(async () => (await call(api.GET('/api/v1/nodes'))).nodes.find((n) => n.name === t.hostname && n.status === 'online'), 30_000, 'the node online');
    expect(node.labels).toEqual({ room: 'hall' });
    expect((await getNode(api, node.id)).host?.hostname).toBe(t.hostname);
    for (const file of INSTALLED) expect(t.exists(file), file).toBe(true);
    expect(t.run('stat -c %a /etc/dvic-agent/config.json').output.trim()).toBe('600');
    expect(t.run('systemctl is-enabled dvic-agent.service; systemctl is-active dvic-agent.service').output.split('\n').slice(0, 2)).toEqual(['enabled', 'active']);
    const verified = t.run('systemd-analyze verify /etc/systemd/system/dvic-agent.service');
    expect(verified.status, verified.output).toBe(0);
    expect(verified.output.split('\n').filter((line) => line.includes('dvic-agent.service'))).toEqual([]);

    // The token is used up now: refused, saying so.
    const again = t.run(`curl -fsS ${server.baseUrl}/install.sh | sh -s -- --token ${link.secret}`);
    expect(again.status).not.toBe(0);
    expect(again.output).toContain('the server refused the token (expired, used up, or unknown)');
    const used = await fetch(`${server.baseUrl}/api/v1/enrollment-tokens/exchange`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: link.secret, hostname: 'x' }) });
    expect(used.status).toBe(403);
    expect(((await used.json()) as { error: { message: string } }).error.message).toBe('this install token is used up (1 of 1 uses): ask for a new install link');

    // Running the installer again (no token: the node keeps its identity) gives the same result.
    const snapshot = () => t.run('sha256sum /opt/dvic-agent/dvic_agent.py /etc/dvic-agent/config.json /etc/systemd/system/dvic-agent.service; stat -c "%n %a %U" /opt/dvic-agent /etc/dvic-agent /var/lib/dvic-agent /etc/dvic-agent/config.json').output;
    const before = snapshot();
    const rerun = t.run(`curl -fsS ${server.baseUrl}/install.sh | sh`);
    expect(rerun.status, rerun.output).toBe(0);
    expect(snapshot()).toBe(before);
    await waitFor(async () => (await getNode(api, node.id)).status === 'online', 30_000, 'the node online again');

    const removed = t.run(`curl -fsS ${server.baseUrl}/install.sh | sh -s -- --uninstall`);
    expect(removed.status, removed.output).toBe(0);
    for (const file of INSTALLED) expect(t.exists(file), file).toBe(false);
    expect(t.run('systemctl is-active dvic-agent.service').output.trim()).toBe('inactive');
    await waitFor(async () => (await getNode(api, node.id)).status === 'offline', 60_000, 'the node offline');
  });

  it('tells what is missing without --install-deps', async () => {
    const t = await bootTarget({ withoutPython: true });
    targets.push(t);
    const result = t.run(`curl -fsS ${server.baseUrl}/install.sh | sh -s -- --token dvin_whatever`);
    expect(result.status).toBe(1);
    expect(result.output.trim()).toBe('dvic install: error: missing: python3 (the agent needs python3 >= 3.8 and openssl): install them, or run again with --install-deps');
  });
});
