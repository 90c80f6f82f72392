// Real processes for end-to-end tests: the server as `node server/dist/main.js` and the real
// Python agent, each in its own process, on loopback. Everything started here is killed by stopAll().
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const AGENT_PATH = path.join(repoDir, 'agent/dvic_agent.py');
export const PYTHON = '/usr/bin/python3';
export const ADMIN_PASSWORD = 'e2e-admin-password';

const running = new Set<ChildProcess>();

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export function tempDir(prefix = 'dvic-e2e-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A child process whose output is kept, so a failing test can show it. */
export class Proc {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    running.add(child);
    child.stdout?.on('data', (d) => { this.output += d; });
    child.stderr?.on('data', (d) => { this.output += d; });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => { running.delete(child); resolve({ code, signal }); }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Signals the process, or its whole group when it leads one (npm start and its node child). */
  signal(signal: NodeJS.Signals): void {
    try {
      process.kill(this.child.spawnargs.length && this.detached ? -this.pid : this.pid, signal);
    } catch {
      // already gone
    }
  }

  detached = false;

  /** Resolves when the output contains the text (bounded). */
  async waitForOutput(text: string | RegExp, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const has = () => (typeof text === 'string' ? this.output.includes(text) : text.test(this.output));
    while (!has()) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`process exited (code ${this.child.exitCode}, signal ${this.child.signalCode}) before printing ${text}:\n${this.output}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${text} in:\n${this.output}`);
      await sleep(50);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.signal(signal);
    const timer = setTimeout(() => this.signal('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface ServerProcess extends Proc {
  baseUrl: string;
  agentUrl: string;
  port: number;
  dataDir: string;
}

/** Starts the real server; resolves once it prints its banner. */
let testShell: string | undefined;

/**
 * The shell terminals open in tests: bash without the machine's profile and rc files, in a home of
 * its own. A login shell would run whatever this machine's dotfiles do (a pyenv rehash waiting on
 * a stale lock made every terminal test hang here).
 */
export function isolatedShell(): string {
  if (testShell) return testShell;
  const dir = tempDir('dvic-shell-');
  testShell = path.join(dir, 'shell');
  fs.writeFileSync(testShell, `#!/bin/sh\nHOME=${dir} exec /bin/bash --noprofile --norc -i\n`, { mode: 0o755 });
  return testShell;
}

export async function startServer(options: { env?: Record<string, string>; port?: number; dataDir?: string; command?: string[]; cwd?: string } = {}): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? tempDir();
  const command = options.command ?? [process.execPath, path.join(repoDir, 'server/dist/main.js')];
  const child = spawn(command[0]!, command.slice(1), {
    cwd: options.cwd ?? repoDir,
    env: {
      ...process.env, DVIC_PORT: String(port), DVIC_HOST: '127.0.0.1', DVIC_DATA_DIR: dataDir,
      DVIC_ADMIN_PASSWORD: ADMIN_PASSWORD, DVIC_LOCAL_AGENT: '0', DVIC_LOCAL_AGENT_SHELL: isolatedShell(), ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const proc = Object.assign(new Proc(child), {
    detached: true, port, dataDir, baseUrl: `http://127.0.0.1:${port}`, agentUrl: `ws://127.0.0.1:${port}/api/v1/agent`,
  }) as ServerProcess;
  await proc.waitForOutput('DVIC Demo Monitor is running', 120_000);
  return proc;
}

/**
 * Writes an agent config (key in its own 0600 file) and returns its path. The agent gets a log
 * directory of its own, no system logs and no other mount namespace unless extra asks: a test
 * never reads the machine's /tmp/dvic_log_* files, journal or containers.
 */
export function writeAgentConfig(dir: string, config: { server_url: string; node_id: string; private_key: string }, extra: object = {}): string {
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const keyPath = path.join(dir, 'node.key');
  fs.writeFileSync(keyPath, config.private_key, { mode: 0o600 });
  const configPath = path.join(dir, 'agent.json');
  fs.writeFileSync(configPath, JSON.stringify({
    server_url: config.server_url, node_id: config.node_id, key_path: keyPath, state_dir: path.join(dir, 'state'),
    log_dir: path.join(dir, 'logs'), system_logs: 'off', container_logs: false, terminal_shell: isolatedShell(), ...extra,
  }), { mode: 0o600 });
  return configPath;
}

/** The real agent; prefix runs it under another command (e.g. prlimit). */
export function startAgent(configPath: string, args: string[] = [], prefix: string[] = []): Proc {
  const command = [...prefix, PYTHON, AGENT_PATH, '--config', configPath, ...args];
  return new Proc(spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Kills every process started here, except those kept (a server that a file's tests share). */
export async function stopAll(keep: readonly Proc[] = []): Promise<void> {
  const kept = new Set(keep.map((proc) => proc.child));
  await Promise.all([...running].filter((child) => !kept.has(child)).map((child) => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
    return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
  }));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Truthy<T> = Exclude<T, null | undefined | false | 0 | ''>;

/** Polls until check returns a truthy value (bounded), and resolves with it. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs: number, what: string): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Truthy<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ''}`);
    await sleep(100);
  }
}
