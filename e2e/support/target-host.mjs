// Real target machines for SSH onboarding: a Debian bookworm tree (debootstrap, from Debian's own
// packages: systemd, openssh-server, python3, openssl, sudo), booted with systemd as its PID 1 by
// systemd-nspawn (or, for the "no systemd" case, running only sshd). The tree is built once per
// machine under the temp dir and copied for each target; every target gets fresh SSH host keys,
// its own hostname and its own port, and shares the host's loopback network. Plain JavaScript (types
// in target-host.d.mts): bench/onboarding runs it without a build.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tempDir = (prefix) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

const MIRROR = 'http://deb.debian.org/debian';
const PACKAGES = 'systemd,systemd-sysv,dbus,openssh-server,python3,openssl,sudo,curl';
const ROOTFS = path.join(os.tmpdir(), `dvic-onboarding-rootfs-${crypto.createHash('sha256').update(PACKAGES).digest('hex').slice(0, 8)}`);

export const TARGET_USER = 'lab';
export const TARGET_PASSWORD = 'Lab-pass-7Qz!word';
/** A user whose sudo asks for root's password (Defaults rootpw), which is not TARGET_PASSWORD. */
export const ROOTPW_USER = 'labroot';

export function canBootTargets() {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of ['debootstrap', 'systemd-nspawn']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} is not installed (apt-get install debootstrap systemd-container)`;
    }
  }
  return null;
}

/** The cached Debian tree, built on first use (about a minute). */
export function debianTree() {
  if (fs.existsSync(path.join(ROOTFS, 'usr/sbin/sshd'))) return ROOTFS;
  const partial = `${ROOTFS}.partial-${process.pid}`;
  fs.rmSync(partial, { recursive: true, force: true });
  execFileSync('debootstrap', ['--variant=minbase', `--include=${PACKAGES}`, 'bookworm', partial, MIRROR], { stdio: 'ignore', timeout: 600_000 });
  try {
    fs.renameSync(partial, ROOTFS);
  } catch {
    fs.rmSync(partial, { recursive: true, force: true }); // another run finished first
  }
  return ROOTFS;
}

/** A fresh copy of the tree, prepared: users, sshd port, host keys, hostname. */
function prepareTree(options) {
  const dir = path.join(tempDir('dvic-target-'), 'root');
  execFileSync('cp', ['-a', debianTree(), dir]);
  const chroot = (script) => execFileSync('chroot', [dir, '/bin/sh', '-c', script], { stdio: 'pipe' });
  fs.writeFileSync(path.join(dir, 'etc/hostname'), `${options.hostname}\n`);
  for (const key of fs.readdirSync(path.join(dir, 'etc/ssh')).filter((f) => f.startsWith('ssh_host_'))) fs.rmSync(path.join(dir, 'etc/ssh', key));
  chroot('ssh-keygen -A >/dev/null');
  fs.writeFileSync(path.join(dir, 'etc/ssh/sshd_config.d/test.conf'), `Port ${options.port}\nListenAddress ${options.netns ? '0.0.0.0' : '127.0.0.1'}\nPasswordAuthentication yes\nKbdInteractiveAuthentication yes\nUsePAM yes\n`);
  chroot([
    `useradd -m -s /bin/sh -G sudo ${TARGET_USER}`, `useradd -m -s /bin/sh -G sudo ${ROOTPW_USER}`,
    `printf '%s\\n' '${TARGET_USER}:${TARGET_PASSWORD}' '${ROOTPW_USER}:${TARGET_PASSWORD}' 'root:Root-only-9xY' | chpasswd`,
    `printf 'Defaults:${ROOTPW_USER} rootpw\\n' > /etc/sudoers.d/rootpw`, 'chmod 0440 /etc/sudoers.d/rootpw',
  ].join(' && '));
  if (options.withoutPython) for (const f of fs.readdirSync(path.join(dir, 'usr/bin')).filter((f) => /^python3(\.\d+)?$/.test(f))) fs.rmSync(path.join(dir, 'usr/bin', f));
  return dir;
}

/**
 * Boots a target: systemd as PID 1 (sshd from its ssh.service), or with `withoutSystemd` only sshd
 * (PID 1 of the container is then sshd itself). Resolves once its SSH port answers with a banner.
 */
export async function bootTarget(options = {}) {
  const port = options.port ?? (await freePort());
  const hostname = `target-${crypto.randomBytes(3).toString('hex')}`;
  const dir = prepareTree({ port, hostname, withoutPython: options.withoutPython, netns: options.netns });
  const base = ['--register=no', '--keep-unit', '--console=pipe', '-q', '-D', dir, `--hostname=${hostname}`,
    ...(options.netns ? [`--network-namespace-path=/run/netns/${options.netns}`] : [])];
  const args = options.withoutSystemd ? [...base, '/bin/sh', '-c', 'mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e'] : [...base, '--boot'];
  const child = spawn('systemd-nspawn', args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const target = {
    port, hostname, dir,
    read: (file) => fs.readFileSync(path.join(dir, file), 'utf8'),
    exists: (file) => fs.existsSync(path.join(dir, file)),
    run(script, timeoutMs = 120_000) {
      const init = execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' }).trim().split(/\s+/)[0];
      const result = spawnSync('nsenter', ['-t', init, '-m', '-u', '-i', '-n', '-p', '--', '/bin/sh', '-c', `cd / && ${script}`], { encoding: 'utf8', timeout: timeoutMs, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      return { status: result.status, output: `${result.stdout}${result.stderr}` };
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(-child.pid, 'SIGTERM');
        const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 10_000);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 90_000;
  while (!(await (options.netns ? sshBannerIn(options.netns, port) : sshBanner(port)))) {
    if (child.exitCode !== null) {
      await target.stop();
      throw new Error(`the target exited before its SSH server answered:\n${output}`);
    }
    if (Date.now() > deadline) {
      await target.stop();
      throw new Error(`the target's SSH server did not answer within 90 s:\n${output}`);
    }
    await sleep(200);
  }
  return target;
}

function sshBanner(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(2000);
    socket.once('data', (d) => { socket.destroy(); resolve(d.toString().startsWith('SSH-')); });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
  });
}

/** The banner check from inside a network namespace (the host has no route into it). */
function sshBannerIn(netns, port) {
  const probe = `import socket,sys\ntry:\n s=socket.create_connection(("127.0.0.1",${Number(port)}),2); sys.exit(0 if s.recv(4)==b"SSH-" else 1)\nexcept OSError: sys.exit(1)`;
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', netns, '/usr/bin/python3', '-c', probe], { stdio: 'ignore' });
    child.once('exit', (code) => resolve(code === 0));
  });
}
