#!/usr/bin/env node
// `npm test`: every suite, each one run even when an earlier one failed, then one summary.
// System packages the tests need are checked first: as root they are installed (apt-get), otherwise
// the run stops with one line naming what to install. Nothing is skipped silently.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** What the tests run, and the Debian package that provides it. */
const NEEDS = [
  ['/usr/bin/python3', 'python3'],
  ['/usr/bin/openssl', 'openssl'],
  ['/usr/bin/chromium', 'chromium'],
  ['/usr/sbin/dockerd', 'docker.io'],
  ['/bin/busybox', 'busybox-static'],
  ['/usr/bin/gcc', 'gcc'],
  ['/usr/bin/g++', 'g++'],
  ['/usr/bin/systemd-analyze', 'systemd'],
  ['/usr/bin/tmux', 'tmux'],
  ['/usr/bin/prlimit', 'util-linux'],
  ['/usr/bin/ps', 'procps'],
  ['/usr/bin/curl', 'curl'],
  ['/usr/bin/prometheus', 'prometheus'],
  ['/usr/bin/promtool', 'prometheus'],
  ['/usr/sbin/sshd', 'openssh-server'],
  ['/usr/sbin/debootstrap', 'debootstrap'],
  ['/usr/bin/systemd-nspawn', 'systemd-container'],
  ['/usr/bin/socat', 'socat'],
];

const SUITES = [
  ['build', 'npm', ['run', '--silent', 'build']],
  ['agent (Python unittest)', '/usr/bin/python3', ['-m', 'unittest', 'discover', '-s', 'agent/tests', '-t', 'agent']],
  ['libs (Python unittest)', '/usr/bin/python3', ['-m', 'unittest', 'discover', '-s', 'libs/python/tests', '-t', 'libs/python']],
  ['TypeScript (vitest: protocol, server, cli, dashboard, libs, e2e)', 'npx', ['vitest', 'run']],
];

function missingPackages() {
  return [...new Set(NEEDS.filter(([file]) => !fs.existsSync(file)).map(([, pkg]) => pkg))];
}

function ensureSystemPackages() {
  let missing = missingPackages();
  if (missing.length === 0) return;
  if (process.getuid?.() === 0 && fs.existsSync('/usr/bin/apt-get')) {
    console.log(`installing what the tests need: ${missing.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
    spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
    missing = missingPackages();
  }
  if (missing.length) {
    console.error(`npm test: missing system packages: ${missing.join(' ')} (run: sudo apt-get install -y ${missing.join(' ')})`);
    process.exit(1);
  }
}

ensureSystemPackages();
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const results = [];
for (const [name, command, args] of SUITES) {
  console.log(`\n==> ${name}`);
  const started = Date.now();
  const { status, signal } = spawnSync(command, args, { cwd: repo, stdio: 'inherit' });
  results.push({ name, ok: status === 0, detail: signal ? `killed by ${signal}` : `exit ${status}`, seconds: (Date.now() - started) / 1000 });
  if (name === 'build' && status !== 0) break; // nothing else can run without it
}
console.log('\n==> summary');
for (const r of results) console.log(`${r.ok ? 'ok    ' : 'FAILED'} ${r.name} (${r.ok ? '' : `${r.detail}, `}${r.seconds.toFixed(0)} s)`);
process.exit(results.every((r) => r.ok) && results.length === SUITES.length ? 0 : 1);
