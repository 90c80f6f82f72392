#!/usr/bin/env node
// `npm test`: every suite, each one run even when an earlier one failed, then one summary.
// System packages the tests need are checked first: as root they are installed (apt-get), otherwise
// the run stops with one line naming what to install. Nothing is skipped silently.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runSuite } from './run-suite.mjs';

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
  ['/usr/bin/setpriv', 'util-linux'],
  ['/usr/bin/ps', 'procps'],
  ['/usr/bin/curl', 'curl'],
  ['/usr/bin/prometheus', 'prometheus'],
  ['/usr/bin/promtool', 'prometheus'],
  ['/usr/sbin/sshd', 'openssh-server'],
  ['/usr/sbin/debootstrap', 'debootstrap'],
  ['/usr/bin/systemd-nspawn', 'systemd-container'],
  ['/usr/bin/socat', 'socat'],
];

const BUILD = ['build', 'npm', ['run', '--silent', 'build']];

/**
 * Run alone, before the lanes: the agent's tests time its own signals and restarts (a SIGINT
 * right after it starts, a watchdog's deadline), and once failed beside the first e2e files
 * (Docker, Chromium) on a 2-core machine. They take half a minute.
 */
const PYTHON = [
  ['agent (Python unittest)', '/usr/bin/python3', ['-m', 'unittest', 'discover', '-s', 'agent/tests', '-t', 'agent']],
  ['libs (Python unittest)', '/usr/bin/python3', ['-m', 'unittest', 'discover', '-s', 'libs/python/tests', '-t', 'libs/python']],
];

/**
 * After the build, two lanes run side by side, each suite of a lane after the other: the e2e
 * project runs its files one at a time (real processes, real ports), and vitest runs its project
 * groups one after another, so in one vitest run the unit files would wait for it (or it for
 * them) and a 2-core machine would use one core. Two vitest processes keep both busy.
 */
const LANES = [
  [
    ['TypeScript (vitest: protocol, server, cli, dashboard, libs)', 'npx', ['vitest', 'run', '--project', '!e2e']],
  ],
  [
    ['end-to-end (vitest: e2e)', 'npx', ['vitest', 'run', '--project', 'e2e']],
  ],
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

async function runLane(suites, tag) {
  const results = [];
  for (const suite of suites) results.push(await runSuite(suite, tag, repo));
  return results;
}

ensureSystemPackages();
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const results = [await runSuite(BUILD, '', repo)];
// nothing else can run without the build
if (results[0].ok) {
  results.push(...(await runLane(PYTHON, '')));
  results.push(...(await Promise.all(LANES.map((lane, i) => runLane(lane, `[${i === 0 ? 'unit' : 'e2e '}] `)))).flat());
}
console.log('\n==> summary');
for (const r of results) console.log(`${r.ok ? 'ok    ' : 'FAILED'} ${r.name} (${r.ok ? '' : `${r.detail}, `}${r.seconds.toFixed(0)} s)`);
process.exit(results.every((r) => r.ok) && results.length === 1 + PYTHON.length + LANES.flat().length ? 0 : 1);
