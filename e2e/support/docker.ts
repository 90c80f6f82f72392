// A private Docker engine for tests: Debian's dockerd with the vfs storage driver, no iptables and
// no bridge, in a temporary directory with its own socket, so it never touches a system Docker.
// Images come from `docker import` of a local busybox-static rootfs: no registry, no network.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir, waitFor } from './processes.js';

const run = promisify(execFile);
export const BUSYBOX = '/bin/busybox';
export const IMAGE = 'dvic-test-busybox:1';

export function dockerAvailable(): string | null {
  for (const binary of ['/usr/sbin/dockerd', '/usr/bin/docker', '/usr/local/bin/docker']) {
    if (binary.endsWith('dockerd') && !fs.existsSync(binary)) return `${binary} missing (apt-get install docker.io)`;
  }
  if (!fs.existsSync(BUSYBOX)) return `${BUSYBOX} missing (apt-get install busybox-static)`;
  if (process.getuid?.() !== 0) return 'dockerd needs root';
  return null;
}

export class TestDocker {
  private daemon: ChildProcess | undefined;
  readonly dir = tempDir('dvic-docker-');
  readonly socket = path.join(this.dir, 'docker.sock');
  private log = '';

  async start(): Promise<void> {
    this.daemon = spawn('/usr/sbin/dockerd', [
      '--storage-driver=vfs', '--iptables=false', '--ip6tables=false', '--bridge=none',
      `--data-root=${path.join(this.dir, 'data')}`, `--exec-root=${path.join(this.dir, 'exec')}`,
      `--pidfile=${path.join(this.dir, 'docker.pid')}`, `--host=unix://${this.socket}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.daemon.stdout!.on('data', (d) => { this.log += d; });
    this.daemon.stderr!.on('data', (d) => { this.log += d; });
    await waitFor(async () => (await this.docker('version', '--format', '{{.Server.Version}}').catch(() => null)) !== null, 60_000, `dockerd to start:\n${this.log}`);
    await this.importBusybox();
  }

  /** Runs the docker CLI against this engine. */
  async docker(...args: string[]): Promise<string> {
    const { stdout } = await run('docker', ['-H', `unix://${this.socket}`, ...args], { timeout: 60_000 });
    return stdout.trim();
  }

  /** Starts a container from the busybox image, with extra files copied into its rootfs first. */
  async runContainer(name: string, command: string[], options: { copy?: Record<string, string> } = {}): Promise<{ id: string; pid: number }> {
    const id = await this.docker('create', '--name', name, '--network', 'none', IMAGE, ...command);
    for (const [from, to] of Object.entries(options.copy ?? {})) await this.docker('cp', from, `${id}:${to}`);
    await this.docker('start', id);
    const pid = Number(await this.docker('inspect', '-f', '{{.State.Pid}}', id));
    return { id, pid };
  }

  async stop(): Promise<void> {
    if (this.daemon && this.daemon.exitCode === null) {
      await this.docker('rm', '-f', ...(await this.docker('ps', '-aq')).split('\n').filter(Boolean)).catch(() => undefined);
      this.daemon.kill('SIGTERM');
      await new Promise((r) => (this.daemon!.exitCode !== null ? r(null) : this.daemon!.once('exit', r)));
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private async importBusybox(): Promise<void> {
    const root = path.join(this.dir, 'rootfs');
    fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
    for (const d of ['tmp', 'proc', 'sys', 'dev', 'etc']) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    fs.copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    for (const applet of ['sh', 'sleep', 'echo', 'cat', 'awk', 'cut', 'kill', 'ls', 'printf', 'date', 'seq']) {
      fs.symlinkSync('busybox', path.join(root, 'bin', applet));
    }
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await run('sh', ['-c', `tar -C '${root}' -c . | docker -H 'unix://${this.socket}' import - ${IMAGE}`], { timeout: 120_000 });
  }
}
