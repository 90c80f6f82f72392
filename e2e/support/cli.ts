// The built `dvic` command as a person runs it, signed in to one server with a home of its own.
// Asynchronous (never spawnSync): the test's own waits and the other processes' output go on
// while a command runs.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN_PASSWORD, Proc, repoDir, tempDir } from './processes.js';

export const DVIC_BIN = path.join(repoDir, 'cli/bin/dvic.js');

export function cliMissing(): string | null {
  return fs.existsSync(path.join(repoDir, 'cli/dist/bin.js')) ? null : 'the CLI is not built (npm run build)';
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Dvic {
  /** Runs `dvic <args>` to its end (killed after timeoutMs). */
  run(args: string[], options?: { input?: string; timeoutMs?: number }): Promise<CliResult>;
  /** Starts `dvic <args>` that runs until stopped (a follow); its output is kept. */
  start(args: string[]): Proc;
}

/** A `dvic` signed in to baseUrl as the admin (`dvic login --password-stdin`). */
export async function dvicOn(baseUrl: string): Promise<Dvic> {
  const env = { ...process.env, HOME: tempDir('dvic-cli-home-'), XDG_CONFIG_HOME: '', DVIC_CONFIG: '', DVIC_URL: '', DVIC_TOKEN: '', NO_COLOR: '1' };
  const start = (args: string[]) => new Proc(spawn(process.execPath, [DVIC_BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] }));
  const run = async (args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CliResult> => {
    const proc = start(args);
    let stdout = '';
    let stderr = '';
    proc.child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    proc.child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    proc.child.stdin!.end(options.input ?? '');
    const timer = setTimeout(() => proc.signal('SIGKILL'), options.timeoutMs ?? 30_000);
    const { code, signal } = await proc.exited;
    clearTimeout(timer);
    if (signal) throw new Error(`dvic ${args.join(' ')} ended by ${signal} (timed out?):\n${stdout}\n${stderr}`);
    return { code, stdout, stderr };
  };
  const login = await run(['login', baseUrl, '--password-stdin'], { input: `${ADMIN_PASSWORD}\n` });
  if (login.code !== 0) throw new Error(`dvic login failed: ${login.stderr}`);
  return { run, start };
}
