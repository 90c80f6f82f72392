// Artifact deploy end to end: the real server, real agents (each in a mount namespace of its own,
// so one destination path is a different directory per node), real archives.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadArtifact, type Schemas } from '@dvic/client';
import type { DeploymentView } from '@dvic/protocol';
import { call, enroll, getNode, session, type Api } from './support/api.js';
import { SmallDisk, canMount } from './support/small-disk.js';
import { PYTHON, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess } from './support/processes.js';

const MB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
// Per-node destinations need a mount namespace (root). Under CI a missing capability fails.
const skip = !isRoot && process.env.CI !== 'true';

let server: ServerProcess;
let api: Api;
let cookie: string;
/** The path every deployment names: each agent sees its own directory there. */
const shared = tempDir('dvic-deploy-root-');
const outside = tempDir('dvic-deploy-outside-');
const nodes: { name: string; id: string; own: string; config: string }[] = [];
/** Directories with large files in them, removed after the tests (hundreds of MB). */
const large: string[] = [shared, outside];
const largeDir = (prefix: string) => { const dir = tempDir(prefix); large.push(dir); return dir; };

/** The agent in a mount namespace of its own where `own` is mounted on the shared deploy root. */
function startNamespacedAgent(configPath: string, own: string) {
  return startAgent(configPath, [], ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"', 'sh', own, shared]);
}

async function addNode(name: string, serverUrl?: string) {
  const { node, config } = await enroll(api, name, { room: name.startsWith('cut') ? 'cut' : 'hall' });
  const own = largeDir(`dvic-deploy-${name}-`);
  const configPath = writeAgentConfig(tempDir(), serverUrl ? { ...config, server_url: serverUrl } : config, { deploy_roots: [shared] });
  startNamespacedAgent(configPath, own);
  nodes.push({ name, id: node.id, own, config: configPath });
  await waitFor(async () => (await getNode(api, node.id)).status === 'online', 20_000, `${name} online`);
  return nodes.at(-1)!;
}

/** A file of random bytes written in 1 MB pieces (never held whole), with its sha256. */
function randomFile(dir: string, bytes: number): { file: string; sha256: string } {
  const file = path.join(dir, `random-${bytes}`);
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'w');
  for (let done = 0; done < bytes; done += MB) {
    const piece = crypto.randomBytes(Math.min(MB, bytes - done));
    hash.update(piece);
    fs.writeSync(fd, piece);
  }
  fs.closeSync(fd);
  return { file, sha256: hash.digest('hex') };
}

const sha256Of = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

const upload = (file: string, name: string, version: string) =>
  uploadArtifact({ baseUrl: server.baseUrl, cookie }, { name, version }, fs.createReadStream(file) as unknown as Blob, fs.statSync(file).size);

async function deploy(body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${server.baseUrl}/api/v1/deployments`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

const getDeployment = async (id: string): Promise<DeploymentView> =>
  (await call(api.GET('/api/v1/deployments/{id}', { params: { path: { id } } }))).deployment;

const ended = (id: string, timeoutMs: number) =>
  waitFor(async () => { const d = await getDeployment(id); return !['running', 'paused', 'rolling_back'].includes(d.state) && d; }, timeoutMs, `deployment ${id} to end`);

/** Archives made by Python's tarfile, with the hostile entries a real tool would not write. */
function archive(kind: 'traversal' | 'symlink-escape'): string {
  const file = path.join(tempDir(), `${kind}.tar.gz`);
  const entries = kind === 'traversal'
    ? `[("ok.txt", tarfile.REGTYPE, ""), ("../../${path.basename(outside)}/evil", tarfile.REGTYPE, "")]`
    : `[("link", tarfile.SYMTYPE, "${outside}"), ("link/evil", tarfile.REGTYPE, "")]`;
  execFileSync(PYTHON, ['-c', `
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as tar:
    for name, kind, target in ${entries}:
        info = tarfile.TarInfo(name); info.type = kind; info.linkname = target
        data = b"pwned" if kind == tarfile.REGTYPE else b""
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
`, file]);
  return file;
}

describe.skipIf(skip)('artifact deploy to real agents', () => {
  beforeAll(async () => {
    server = await startServer({ env: { DVIC_DEPLOY_RECONNECT_WAIT_S: '60' } });
    ({ api, cookie } = await session(server.baseUrl));
    for (const name of ['pi-1', 'pi-2', 'pi-3']) await addNode(name);
  }, 90_000);
  afterAll(async () => {
    await stopAll();
    for (const dir of [...large, server?.dataDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a 100 MB artifact reaches 3 agents with verified hashes', async () => {
    const { file, sha256 } = randomFile(largeDir('dvic-deploy-src-'), 100 * MB);
    const artifact: Schemas['Artifact'] = await upload(file, 'big-model', '1.0.0');
    expect(artifact).toMatchObject({ name: 'big-model', version: '1.0.0', size: 100 * MB, sha256, format: 'file' });
    const id = await deploy({ artifact: artifact.id, targets: { label: 'room=hall' }, path: `${shared}/model.bin`, extract: false, mode: '0640' });
    const done = await ended(id, 240_000);
    expect(done.state, JSON.stringify(done.nodes)).toBe('done');
    expect(done.nodes).toHaveLength(3);
    for (const node of done.nodes) {
      expect(node).toMatchObject({ result: 'done', step: 'done', bytes_done: 100 * MB, message: `sha256 ${sha256} verified` });
    }
    for (const node of nodes.filter((n) => n.name.startsWith('pi-'))) {
      const deployed = path.join(node.own, 'model.bin');
      expect(sha256Of(deployed)).toBe(sha256);
      expect(fs.statSync(deployed).mode & 0o777).toBe(0o640);
      expect(fs.readdirSync(node.own)).toEqual(['model.bin']);
    }
    expect(fs.readdirSync(shared)).toEqual([]); // the test's own namespace sees nothing of theirs
  }, 300_000);

  it('a transfer cut mid-way resumes from the bytes the node kept', async () => {
    // The node reaches the server through a relay that drops the connection after 8 MB, once.
    let cut = false;
    const relay = net.createServer((client) => {
      const upstream = net.connect(server.port, '127.0.0.1');
      let relayed = 0;
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        relayed += chunk.length;
        if (!cut && relayed > 8 * MB) {
          cut = true;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(chunk);
      });
      const end = () => { client.destroy(); upstream.destroy(); };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      const relayUrl = `ws://127.0.0.1:${(relay.address() as net.AddressInfo).port}/api/v1/agent`;
      const node = await addNode('cut-1', relayUrl);
      const { file, sha256 } = randomFile(largeDir('dvic-deploy-src-'), 32 * MB);
      const artifact = await upload(file, 'cut-model', '1.0.0');
      const id = await deploy({ artifact: artifact.id, targets: { nodes: ['cut-1'] }, path: `${shared}/cut.bin` });
      const done = await ended(id, 120_000);
      expect(cut).toBe(true);
      expect(done.state, JSON.stringify(done.nodes)).toBe('done');
      const [result] = done.nodes;
      expect(result!.resumed_from).toBeGreaterThan(0);
      expect(result!.resumed_from).toBeLessThan(32 * MB);
      expect(sha256Of(path.join(node.own, 'cut.bin'))).toBe(sha256);
    } finally {
      relay.close();
    }
  }, 180_000);

  it('a traversal archive and a symlink-escape archive are refused with a clear error, nothing written outside', async () => {
    for (const [kind, words] of [['traversal', "escapes with '..'"], ['symlink-escape', 'points outside']] as const) {
      const artifact = await upload(archive(kind), `hostile-${kind}`, '1');
      expect(artifact.format).toBe('tar.gz');
      const id = await deploy({ artifact: artifact.id, targets: { nodes: ['pi-1'] }, path: `${shared}/app`, extract: true });
      const done = await ended(id, 60_000);
      expect(done.state).toBe('failed');
      expect(done.nodes[0]).toMatchObject({ result: 'failed', step: 'failed' });
      expect(done.nodes[0]!.message).toContain(words);
      expect(done.nodes[0]!.message).toContain('nothing was written');
      expect(fs.readdirSync(outside)).toEqual([]);
      const pi1 = nodes.find((n) => n.name === 'pi-1')!;
      expect(fs.readdirSync(pi1.own).sort()).toEqual(['model.bin']);
    }
  }, 120_000);

  it.skipIf(!canMount && process.env.CI !== 'true')('a node whose disk fills up fails with a clear message, keeps nothing and stays online', async () => {
    const disk = SmallDisk.mount(4);
    try {
      const { node, config } = await enroll(api, 'tiny-disk');
      startAgent(writeAgentConfig(tempDir(), config, { deploy_roots: [disk.dir] }));
      await waitFor(async () => (await getNode(api, node.id)).status === 'online', 20_000, 'tiny-disk online');
      const { file } = randomFile(largeDir('dvic-deploy-src-'), 8 * MB);
      const artifact = await upload(file, 'too-big', '1');
      const id = await deploy({ artifact: artifact.id, targets: { nodes: ['tiny-disk'] }, path: `${disk.dir}/big.bin` });
      const done = await ended(id, 60_000);
      expect(done.nodes[0]).toMatchObject({ result: 'failed', message: `no space left on the node's disk (${disk.dir}/big.bin): nothing was kept` });
      expect(fs.readdirSync(disk.dir)).toEqual([]);
      expect((await getNode(api, node.id)).status).toBe('online');
    } finally {
      disk.unmount();
    }
  }, 90_000);

  it('rolls a deployment back to the previous version on the nodes it reached', async () => {
    const dir = tempDir();
    const v1 = path.join(dir, 'v1');
    const v2 = path.join(dir, 'v2');
    fs.writeFileSync(v1, 'version 1\n');
    fs.writeFileSync(v2, 'version 2\n');
    const first = await deploy({ artifact: (await upload(v1, 'config', '1')).id, targets: { label: 'room=hall' }, path: `${shared}/demo.conf`, post_command: 'true' });
    expect((await ended(first, 60_000)).state).toBe('done');
    const second = await deploy({ artifact: (await upload(v2, 'config', '2')).id, targets: { label: 'room=hall' }, path: `${shared}/demo.conf` });
    expect((await ended(second, 60_000)).state).toBe('done');
    const hall = nodes.filter((n) => n.name.startsWith('pi-'));
    for (const n of hall) expect(fs.readFileSync(path.join(n.own, 'demo.conf'), 'utf8')).toBe('version 2\n');
    const res = await fetch(`${server.baseUrl}/api/v1/deployments/${second}/rollback`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(202);
    const back = await ended(second, 60_000);
    expect(back.state).toBe('rolled_back');
    expect(back.nodes.every((n) => n.result === 'rolled_back')).toBe(true);
    for (const n of hall) expect(fs.readFileSync(path.join(n.own, 'demo.conf'), 'utf8')).toBe('version 1\n');
  }, 150_000);
});
