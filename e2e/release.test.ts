// `npm run release` end to end: the tarball and its sha256, installed into an empty directory
// (unpacked, nothing else), started there, serving exactly that release's agent and dashboard.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { call, signIn } from './support/api.js';
import { repoDir, startServer, stopAll, tempDir } from './support/processes.js';

afterAll(async () => { await stopAll(); });

const sha256 = (bytes: Buffer) => crypto.createHash('sha256').update(bytes).digest('hex');

describe('release tarball', () => {
  it('builds a versioned tarball with its sha256 and changelog entry; installed in an empty dir it serves that release\'s agent', async () => {
    const out = tempDir('dvic-release-');
    const changelog = path.join(out, 'CHANGELOG.md');
    fs.copyFileSync(path.join(repoDir, 'CHANGELOG.md'), changelog);
    const built = spawnSync(process.execPath, [path.join(repoDir, 'scripts/release.mjs'), '--out', out, '--changelog', changelog, '--no-build'], { encoding: 'utf8', timeout: 300_000 });
    expect(built.status, built.stderr).toBe(0);
    const version = JSON.parse(fs.readFileSync(path.join(repoDir, 'package.json'), 'utf8')).version as string;
    const tarball = path.join(out, `dvic-demo-monitor-${version}.tar.gz`);
    expect(fs.readFileSync(`${tarball}.sha256`, 'utf8')).toBe(`${sha256(fs.readFileSync(tarball))}  dvic-demo-monitor-${version}.tar.gz\n`);
    expect(fs.readFileSync(changelog, 'utf8')).toMatch(new RegExp(`\\n## ${version.replace(/\./g, '\\.')} \\(\\d{4}-\\d{2}-\\d{2}\\)\\n`));

    const install = tempDir('dvic-release-install-');
    const unpacked = spawnSync('tar', ['-xzf', tarball, '-C', install], { encoding: 'utf8' });
    expect(unpacked.status, unpacked.stderr).toBe(0);
    const root = path.join(install, `dvic-demo-monitor-${version}`);
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'release.json'), 'utf8'));
    const agent = fs.readFileSync(path.join(root, 'agent/dvic_agent.py'));
    expect(manifest).toMatchObject({ version, agent_sha256: sha256(agent) });
    for (const file of ['agent/install.sh', 'dashboard/dist/index.html', 'libs/python', 'CHANGELOG.md', 'docs/update.md']) expect(fs.existsSync(path.join(root, file)), file).toBe(true);

    // Started from the release alone: its own node_modules, its own agent (no DVIC_AGENT_FILE).
    const server = await startServer({ command: [process.execPath, path.join(root, 'server/dist/main.js')], cwd: root });
    const served = Buffer.from(await (await fetch(`${server.baseUrl}/install/dvic_agent.py`)).arrayBuffer());
    expect(sha256(served)).toBe(manifest.agent_sha256);
    const api = await signIn(server.baseUrl);
    expect((await call(api.GET('/api/v1/agent-release'))).agent).toEqual({ version: manifest.agent_version, sha256: manifest.agent_sha256, size: agent.length });
    expect(await (await fetch(server.baseUrl)).text()).toContain('<div id="app"');
    fs.rmSync(out, { recursive: true, force: true });
  });
});
