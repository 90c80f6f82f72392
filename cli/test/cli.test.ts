// The built `dvic` command against a real server process (and the real agent for exec/shell).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectAgent } from '../../server/test/support/simulated-agent.mjs';
import { ADMIN_PASSWORD, apiClient, freePort, PYTHON, repoDir, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess } from '../../e2e/support/processes.js';

const BIN = path.join(repoDir, 'cli/bin/dvic.js');
let server: ServerProcess;
let api: Awaited<ReturnType<typeof apiClient>>;
let home: string;
let env: NodeJS.ProcessEnv;

function dvic(args: string[], input?: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const res = spawnSync(process.execPath, [BIN, ...args], { env: { ...env, ...extraEnv }, input, encoding: 'utf8', timeout: 30_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

beforeAll(async () => {
  server = await startServer();
  api = await apiClient(server.baseUrl);
  home = tempDir('dvic-cli-home-');
  env = { ...process.env, HOME: home, XDG_CONFIG_HOME: '', DVIC_CONFIG: '', DVIC_URL: '', DVIC_TOKEN: '', NO_COLOR: '1' };
  const login = dvic(['login', server.baseUrl, '--password-stdin'], `${ADMIN_PASSWORD}\n`);
  expect(login.code, login.stderr).toBe(0);
});
afterEach(async () => { /* agents started per test are stopped in afterAll */ });
afterAll(async () => { await stopAll(); });

describe('dvic login', () => {
  it('stores a working API token in ~/.config/dvic/config.json, readable by its owner only', () => {
    const file = path.join(home, '.config/dvic/config.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const config = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(config).toMatchObject({ url: server.baseUrl, token: expect.stringMatching(/^dvic_/) });
  });

  it('refuses a wrong password with the server\'s message, exit code 1', () => {
    const res = dvic(['login', server.baseUrl, '--password-stdin'], 'wrong\n', { HOME: tempDir() });
    expect(res.code).toBe(1);
    expect(res.stderr.trim()).toBe('dvic: sign-in refused: wrong username or password');
  });

  it('reads a piped password when there is no terminal, and says so when there is none', () => {
    const piped = dvic(['login', server.baseUrl], `${ADMIN_PASSWORD}\n`, { HOME: tempDir() });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toMatch(/^Signed in to /);
    const none = dvic(['login', server.baseUrl], '', { HOME: tempDir() });
    expect([none.code, none.stderr.trim()]).toEqual([2, 'dvic: no password: pipe it in, or use --password-stdin or DVIC_PASSWORD (see dvic login --help)']);
  });

  it('tells to sign in when there is no config, and names the URL it cannot reach', async () => {
    const nobody = dvic(['nodes'], undefined, { HOME: tempDir() });
    expect([nobody.code, nobody.stderr.trim()]).toEqual([1, 'dvic: not signed in: run dvic login <url>']);
    const closedPort = await freePort();
    const down = dvic(['nodes'], undefined, { DVIC_URL: `http://127.0.0.1:${closedPort}`, DVIC_TOKEN: 'dvic_x' });
    expect(down.code).toBe(1);
    expect(down.stderr).toBe(`dvic: cannot reach http://127.0.0.1:${closedPort}: ECONNREFUSED\n`);
  });

  it('answers usage errors with exit code 2 and --help with 0, on every command', () => {
    for (const args of [['bogus'], ['nodes', '--bogus'], ['node'], ['logs', '--level', 'LOUD'], ['exec', 'pi'], ['shell'], ['login']]) {
      const res = dvic(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    for (const args of [['--help'], ['nodes', '--help'], ['nodes', 'watch', '--help'], ['node', '-h'], ['logs', '--help'], ['demos', '--help'], ['exec', '--help'], ['shell', '--help'], ['login', '--help'], ['logout', '--help'], ['nodes', 'add', '--help']]) {
      const res = dvic(args);
      expect(res.code, args.join(' ')).toBe(0);
      expect(res.stdout, args.join(' ')).toMatch(/usage: dvic/);
    }
  });
});

describe('the dvic command', () => {
  it('is on the path of npx in the repository after npm ci and a build', () => {
    const res = spawnSync('npx', ['--no-install', 'dvic', '--help'], { cwd: repoDir, env, encoding: 'utf8', timeout: 30_000 });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/usage: dvic/);
  });
});

describe('dvic nodes', () => {
  it('--json lists exactly the nodes of the API; the table shows names and status in words', async () => {
    const { config } = await api('POST', '/api/v1/nodes', { name: 'cli-pi', labels: { room: 'hall' } });
    await api('POST', '/api/v1/nodes', { name: 'cli-offline' });
    const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
    agent.sendHardware({ cpu: { total_pct: 37, per_core_pct: [37] } });
    await waitFor(async () => (await api('GET', `/api/v1/nodes/${config.node_id}`)).node.hardware, 5000, 'hardware');
    const json = dvic(['nodes', '--json']);
    expect(json.code).toBe(0);
    const listed = JSON.parse(json.stdout).nodes.map((n: any) => n.id).sort();
    expect(listed).toEqual((await api('GET', '/api/v1/nodes')).nodes.map((n: any) => n.id).sort());
    const table = dvic(['nodes']).stdout;
    expect(table).toMatch(/^NAME\s+STATUS\s+CPU/);
    expect(table).toMatch(/cli-pi\s+online \d+s\s+37%/);
    expect(table).toMatch(/cli-offline\s+offline/);
    expect(dvic(['nodes', '--status', 'online', '--json']).stdout).not.toContain('cli-offline');
    expect(JSON.parse(dvic(['nodes', '--label', 'room=hall', '--json']).stdout).nodes.map((n: any) => n.name)).toEqual(['cli-pi']);
    const detail = dvic(['node', config.node_id.slice(0, 6)]);
    expect(detail.code, detail.stderr).toBe(0);
    expect(detail.stdout).toMatch(/^cli-pi\s+online/);
    expect(detail.stdout).toMatch(/cpu use:\s+37% total/);
    agent.close();
  });

  it('lists the candidates of an ambiguous id prefix', async () => {
    const ids = (await api('GET', '/api/v1/nodes')).nodes.map((n: any) => n.id as string);
    const res = dvic(['node', '']);
    expect(res.code).toBe(1);
    const shared = ids.find((id: string) => ids.filter((o: string) => o.startsWith(id.slice(0, 1))).length > 1)?.slice(0, 1);
    if (shared) {
      const ambiguous = dvic(['node', `${shared}`]);
      expect(ambiguous.stderr).toMatch(/no node|matches \d+ nodes/);
    }
    expect(dvic(['node', 'no-such-node']).stderr.trim()).toBe('dvic: no node "no-such-node" (give its name, its id, or the start of its id)');
  });

  it('adds a node and writes its agent config with mode 0600, refusing to overwrite', () => {
    const out = path.join(tempDir(), 'new.json');
    const res = dvic(['nodes', 'add', 'cli-new', '--label', 'kind=pi', '--output', out]);
    expect(res.code, res.stderr).toBe(0);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(out, 'utf8'))).toMatchObject({ server_url: expect.stringMatching(/\/api\/v1\/agent$/), private_key: expect.stringContaining('PRIVATE KEY') });
    expect(dvic(['nodes', 'add', 'cli-new2', '--output', out]).code).toBe(1);
    expect(dvic(['nodes', 'rename', 'cli-new', 'cli-renamed']).code).toBe(0);
    expect(dvic(['nodes', 'label', 'cli-renamed', 'room=lab', 'kind-']).stdout.trim()).toBe('cli-renamed: room=lab');
    expect(dvic(['nodes', 'revoke', 'cli-renamed']).code).toBe(0);
    expect(dvic(['nodes', '--status', 'revoked']).stdout).toMatch(/cli-renamed\s+revoked/);
  });

  it('watch follows live changes and stops on Ctrl-C with code 0', async () => {
    const { config } = await api('POST', '/api/v1/nodes', { name: 'cli-watched' });
    const child = spawn(process.execPath, [BIN, 'nodes', 'watch'], { env });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    await waitFor(() => /cli-watched\s+offline/.test(out), 10_000, 'first table');
    const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
    agent.sendHardware({ cpu: { total_pct: 88, per_core_pct: [88] } });
    await waitFor(() => /cli-watched\s+online \d+s\s+88%/.test(out), 10_000, 'the update');
    agent.close();
    await waitFor(() => out.split('cli-watched').at(-1)!.trimStart().startsWith('offline'), 10_000, 'offline again');
    child.kill('SIGINT');
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(0);
  });
});

describe('dvic logs and demos', () => {
  it('searches stored logs and follows new ones', async () => {
    const { config } = await api('POST', '/api/v1/nodes', { name: 'cli-logger' });
    const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
    const token = 'CliLogToken00000000001';
    const batch = (id: string, from: number, messages: [string, string][]) => ({
      type: 'demo.logs', id, data: { token, demo: 'kiosk', start_offset: from, end_offset: from + messages.length,
        records: messages.map(([level, message], i) => ({ ts: new Date().toISOString(), level, message, offset: from + i })) },
    });
    agent.send({ type: 'demo.state', data: { full: true, demos: [{ token, demo: 'kiosk', pid: 42, alive: true }] } });
    agent.send(batch('b1', 0, [['INFO', 'booted'], ['WARN', 'disk almost full'], ['ERROR', 'camera lost']]));
    await agent.next((m: any) => m.type === 'logs.ack');
    const all = dvic(['logs', 'cli-logger']);
    expect(all.stdout.trim().split('\n').map((l) => l.replace(/^\S+ \S+ /, ''))).toEqual(['cli-logger/kiosk INFO  booted', 'cli-logger/kiosk WARN  disk almost full', 'cli-logger/kiosk ERROR camera lost']);
    expect(dvic(['logs', '--demo', 'kiosk', '--level', 'warn', '--json']).stdout.trim().split('\n').map((l) => JSON.parse(l).message)).toEqual(['disk almost full', 'camera lost']);
    expect(dvic(['logs', '-q', 'camera']).stdout).toMatch(/camera lost/);
    expect(dvic(['demos', 'cli-logger']).stdout).toMatch(/cli-logger\s+kiosk\s+alive \d+s\s+42\s+-\s+3\s+1/);

    const follower = spawn(process.execPath, [BIN, 'logs', 'cli-logger', '-f', '-n', '1'], { env });
    let out = '';
    follower.stdout.on('data', (d) => { out += d; });
    await waitFor(() => out.includes('camera lost'), 10_000, 'the last stored line');
    await new Promise((r) => setTimeout(r, 500));
    agent.send(batch('b2', 3, [['FATAL', 'out of memory']]));
    await waitFor(() => out.includes('FATAL out of memory'), 10_000, 'the followed line');
    follower.kill('SIGINT');
    expect(await new Promise((r) => follower.on('exit', r))).toBe(0);
    agent.close();
  });
});

describe('dvic exec and dvic shell with the real agent', () => {
  async function realAgent(name: string, labels: Record<string, string> = {}) {
    const { node, config } = await api('POST', '/api/v1/nodes', { name, labels });
    startAgent(writeAgentConfig(tempDir(), config));
    await waitFor(async () => (await api('GET', `/api/v1/nodes/${node.id}`)).node.status === 'online', 15_000, `${name} online`);
    return node;
  }

  it('streams output and exits with the remote exit code; fans out with node prefixes', async () => {
    await realAgent('cli-exec-1', { fleet: 'x' });
    await realAgent('cli-exec-2', { fleet: 'x' });
    const one = dvic(['exec', 'cli-exec-1', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect([one.code, one.stdout, one.stderr]).toEqual([3, 'out\n', 'err\n']);
    const shell = dvic(['exec', 'cli-exec-1', '-c', 'echo $((6 * 7))']);
    expect([shell.code, shell.stdout]).toEqual([0, '42\n']);
    const many = dvic(['exec', '--label', 'fleet=x', '--', 'echo', 'hello']);
    expect(many.code, many.stderr).toBe(0);
    expect(many.stdout.trim().split('\n').sort()).toEqual(['[cli-exec-1] hello', '[cli-exec-2] hello']);
  });

  it('opens a real shell in a pseudo-terminal and returns its exit code', async () => {
    await realAgent('cli-shell');
    // A pseudo-terminal for dvic itself, as a person's terminal would be.
    const driver = `
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execvpe(sys.argv[1], sys.argv[1:], os.environ)
out = b""
def read_for(seconds):
    global out
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return
read_for(3)
os.write(fd, b"stty size; echo $((6*7))\\r")
read_for(2)
os.write(fd, b"exit 5\\r")
read_for(3)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
sys.exit(os.WEXITSTATUS(status))
`;
    const res = spawnSync(PYTHON, ['-c', driver, process.execPath, BIN, 'shell', 'cli-shell'], { env, encoding: 'utf8', timeout: 30_000 });
    // Output lines start after "\r\n", or after "\r" when bash switches bracketed paste off.
    expect(res.stdout, JSON.stringify(res.stdout)).toMatch(/[\r\n]42\r\n/);
    expect(res.stdout).toMatch(/[\r\n]24 80\r\n/);
    expect(res.status).toBe(5);
  });
});
