// The built `dvic` command as people run it (npx, a pseudo-terminal) against the real server and
// the real agent. Everything else about the CLI runs in process: cli/test.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enroll, getNode, signIn, type Api } from './support/api.js';
import { linesWritten, steadyDemo } from './support/demos.js';
import { ADMIN_PASSWORD, PYTHON, repoDir, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess } from './support/processes.js';

const BIN = path.join(repoDir, 'cli/bin/dvic.js');
const missing = fs.existsSync(path.join(repoDir, 'cli/dist/bin.js')) ? null : 'the CLI is not built (npm run build)';

let server: ServerProcess;
let api: Api;
let env: NodeJS.ProcessEnv;

function dvic(args: string[], input?: string) {
  const res = spawnSync(process.execPath, [BIN, ...args], { env, input, encoding: 'utf8', timeout: 30_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** Enrolls a node, runs the real agent for it, and waits for it online. */
async function realAgent(name: string, labels: Record<string, string> = {}, extra: object = {}) {
  const { node, config } = await enroll(api, name, labels);
  startAgent(writeAgentConfig(tempDir(), config, extra));
  await waitFor(async () => (await getNode(api, node.id)).status === 'online', 15_000, `${name} online`);
  return node;
}

beforeAll(async () => {
  if (missing) throw new Error(missing);
  server = await startServer();
  api = await signIn(server.baseUrl);
  env = { ...process.env, HOME: tempDir('dvic-cli-home-'), XDG_CONFIG_HOME: '', DVIC_CONFIG: '', DVIC_URL: '', DVIC_TOKEN: '', NO_COLOR: '1' };
  const login = dvic(['login', server.baseUrl, '--password-stdin'], `${ADMIN_PASSWORD}\n`);
  expect(login.code, login.stderr).toBe(0);
});
afterAll(async () => { await stopAll(); });

describe('the dvic command', () => {
  it('is on the path of npx in the repository after npm ci and a build', () => {
    const res = spawnSync('npx', ['--no-install', 'dvic', '--help'], { cwd: repoDir, env, encoding: 'utf8', timeout: 30_000 });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/usage: dvic/);
  });
});

describe('dvic exec and dvic shell with the real agent', () => {
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
def read_until(patterns, seconds):
    global out
    end = time.time() + seconds
    while time.time() < end and not any(p in out for p in patterns):
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return
read_until([b"$ ", b"# "], 10)  # the shell's prompt
os.write(fd, b"stty size; echo $((6*7))\\r")
read_until([b"42\\r\\n"], 10)
os.write(fd, b"exit 5\\r")
read_until([], 5)  # until dvic exits (the read fails) or 5 s
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
sys.exit(os.WEXITSTATUS(status))
`;
    const res = spawnSync(PYTHON, ['-c', driver, process.execPath, BIN, 'shell', 'cli-shell'], { env, encoding: 'utf8', timeout: 40_000 });
    // Output lines start after "\r\n", or after "\r" when bash switches bracketed paste off.
    expect(res.stdout, JSON.stringify(res.stdout)).toMatch(/[\r\n]42\r\n/);
    expect(res.stdout).toMatch(/[\r\n]24 80\r\n/);
    expect(res.status).toBe(5);
  });
});

describe('dvic logs -f with the real agent', () => {
  it('prints each line of a demo writing as it starts following once, in order', async () => {
    const logDir = tempDir('dvic-cli-logs-');
    await realAgent('cli-follow', {}, { log_dir: logDir });
    const stopFile = path.join(tempDir(), 'stop');
    const writer = steadyDemo({ DVIC_LOG_DIR: logDir }, 'ticker', { stopFile, rate: 100, max: 5000, prefix: 'tick' });
    await waitFor(async () => (await getNode(api, 'cli-follow')).demos.some((d) => d.line_count >= 20), 15_000, 'the first lines stored');
    const follow = spawn(process.execPath, [BIN, 'logs', 'cli-follow', '--demo', 'ticker', '-f', '-n', '1000'], { env });
    let out = '';
    follow.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const printed = () => [...out.matchAll(/ tick (\d+)$/gm)].map((m) => Number(m[1]));
    const first = await waitFor(() => printed().length > 0 && printed().at(-1)! + 1, 15_000, 'the history');
    await waitFor(() => printed().at(-1)! >= first + 100, 15_000, 'lines written while following');
    fs.writeFileSync(stopFile, '');
    const count = await linesWritten(writer);
    await waitFor(() => printed().at(-1) === count - 1, 15_000, 'the last line');
    follow.kill('SIGINT');
    expect(await new Promise((resolve) => follow.on('exit', resolve))).toBe(0);
    // From the first line of the history to the last one written: none missing, none twice.
    expect(printed()).toEqual(Array.from({ length: count - printed()[0]! }, (_, i) => printed()[0]! + i));
  });
});
