#!/usr/bin/env node
// `npm run release`: a versioned tarball of everything a server install needs, built here for
// this platform (linux, this CPU: better-sqlite3 is native):
//   dvic-demo-monitor-<version>/  server/ (dist, workers, unit), dashboard/dist, protocol/dist,
//   agent/ (dvic_agent.py, install.sh, unit), libs/, node_modules/ (production only), docs, CHANGELOG.md,
//   release.json (version, agent version and sha256, commit)
// plus <tarball>.sha256 (sha256sum format) and a CHANGELOG.md entry for the version (the commit
// subjects since the last change of the changelog), written only when the version has none yet.
//
//   node scripts/release.mjs [--out DIR] [--changelog FILE] [--no-build]
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { out: { type: 'string' }, changelog: { type: 'string' }, 'no-build': { type: 'boolean' } } });
const out = path.resolve(values.out ?? path.join(repo, 'release'));
const changelog = path.resolve(values.changelog ?? path.join(repo, 'CHANGELOG.md'));
const version = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version;
const name = `dvic-demo-monitor-${version}`;

/** What a server install holds, from the repository (after the build). */
const FILES = [
  'package.json:release', 'README.md', 'server/package.json', 'server/dist', 'server/workers', 'server/dvic-server.service',
  'protocol/package.json', 'protocol/dist', 'dashboard/dist', 'agent/dvic_agent.py', 'agent/install.sh', 'agent/dvic-agent.service',
  'libs/python', 'libs/node/package.json', 'libs/node/dist', 'libs/c', 'libs/arduino', 'libs/micropython', 'docs',
];
/** Parts of production packages a running server never reads (sources of the native build). */
const PRUNE = ['better-sqlite3/deps', 'better-sqlite3/src', 'better-sqlite3/build/Release/obj', 'better-sqlite3/build/Release/obj.target', 'better-sqlite3/build/deps'];

function run(command, args, options = {}) {
  return execFileSync(command, args, { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options });
}

async function main() {
  if (!values['no-build']) run('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
  const stage = path.join(out, name);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  for (const entry of FILES) copyEntry(entry, stage);
  copyProductionModules(stage);
  const agent = fs.readFileSync(path.join(stage, 'agent/dvic_agent.py'));
  // The server's own reading of the version (one regex, in server/src/services/agent-release.ts), from the build just copied.
  const { parseAgentVersion } = await import(pathToFileURL(path.join(stage, 'server/dist/services/agent-release.js')).href);
  const agentVersion = parseAgentVersion(agent.toString('utf8'));
  if (!agentVersion) throw new Error('agent/dvic_agent.py has no AGENT_VERSION');
  const manifest = { version, agent_version: agentVersion, agent_sha256: sha256(agent), commit: gitCommit(), built_at: new Date().toISOString() };
  fs.writeFileSync(path.join(stage, 'release.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  addChangelogEntry(manifest);
  fs.copyFileSync(changelog, path.join(stage, 'CHANGELOG.md'));
  const tarball = path.join(out, `${name}.tar.gz`);
  run('tar', ['-czf', tarball, '--owner=0', '--group=0', '-C', out, name]);
  const digest = sha256(fs.readFileSync(tarball));
  fs.writeFileSync(`${tarball}.sha256`, `${digest}  ${path.basename(tarball)}\n`);
  fs.rmSync(stage, { recursive: true, force: true });
  console.log(`${tarball}\nsha256 ${digest}\nagent ${agentVersion} (sha256 ${manifest.agent_sha256})`);
}

/** A file or directory of the repository, the same path in the release ("package.json:release": the release's own package.json). */
function copyEntry(entry, stage) {
  if (entry === 'package.json:release') {
    const pkg = { name: 'dvic-demo-monitor', version, private: true, type: 'module', scripts: { start: 'node server/dist/main.js' }, engines: { node: '>=20.19' } };
    return fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  }
  const from = path.join(repo, entry);
  if (!fs.existsSync(from)) throw new Error(`${entry} is missing: run npm run build first`);
  fs.cpSync(from, path.join(stage, entry), { recursive: true, filter: (p) => !/(^|\/)(node_modules|tests?|__pycache__)(\/|$)/.test(path.relative(from, p)) });
}

/**
 * The server's production dependencies as npm resolved them here (in node_modules/ and in a
 * workspace's own node_modules/), each at the same place; the workspaces as links into the release.
 */
function copyProductionModules(stage) {
  const listed = run('npm', ['ls', '--omit=dev', '--all', '--parseable', '-w', '@dvic/server']).split('\n').filter(Boolean);
  for (const dir of listed) {
    const rel = path.relative(repo, dir);
    const inModules = rel.split(path.sep).filter((part) => part === 'node_modules').length;
    if (inModules !== 1) continue; // the repository and the workspaces themselves; nested ones come with their parent
    const target = path.join(stage, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (fs.lstatSync(dir).isSymbolicLink()) {
      fs.symlinkSync(path.relative(path.dirname(target), path.join(stage, path.relative(repo, fs.realpathSync(dir)))), target);
    } else {
      fs.cpSync(dir, target, { recursive: true, dereference: true });
    }
  }
  for (const part of PRUNE) fs.rmSync(path.join(stage, 'node_modules', part), { recursive: true, force: true });
}

/** Prepends "## <version> (<date>)" with the commit subjects since the changelog last changed, once per version. */
function addChangelogEntry(manifest) {
  const text = fs.existsSync(changelog) ? fs.readFileSync(changelog, 'utf8') : '# Changelog\n';
  if (text.includes(`\n## ${version} `)) return;
  const since = gitOr(['log', '-1', '--format=%H', '--', path.relative(repo, changelog)], '').trim();
  const subjects = gitOr(['log', '--no-merges', '--format=%s', '-n', '200', ...(since ? [`${since}..HEAD`] : [])], '').split('\n').filter(Boolean);
  const entry = [`## ${version} (${manifest.built_at.slice(0, 10)})`, '', `Agent ${manifest.agent_version}. Upgrade: install this release, restart the server, then \`dvic update --all\` (docs/update.md).`, '',
    ...(subjects.length ? subjects.map((s) => `- ${s}`) : ['- (no commits recorded)']), ''].join('\n');
  const [head, ...rest] = text.split(/\n(?=## )/);
  fs.writeFileSync(changelog, [head.trimEnd() + '\n', entry, ...rest].join('\n'));
}

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const gitOr = (args, fallback) => { try { return run('git', args, { stdio: ['ignore', 'pipe', 'ignore'] }); } catch { return fallback; } };
const gitCommit = () => gitOr(['rev-parse', 'HEAD'], 'unknown').trim();

await main();
