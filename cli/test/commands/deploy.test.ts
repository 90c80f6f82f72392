// `dvic artifacts` and `dvic deploy`, in-process against a real server; the node is a simulated
// agent that fetches the artifact's chunks over its connection and reports its steps.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SimulatedAgent } from '../../../server/test/support/simulated-agent.mjs';
import { waitFor } from '../../../server/test/support/test-server.js';
import { serverForTests } from '../support/cli-server.js';
import { dvic } from '../support/run-cli.js';

const server = serverForTests();

/** Fetches the whole artifact in chunks, checks its hash, then reports done (or failed). */
async function actAsDeployingAgent(agent: SimulatedAgent, fail?: string): Promise<Buffer> {
  const request = await agent.nextOf('deploy.request', 10_000);
  const data = request.data as { deploy_id: string; size: number; sha256: string };
  const parts: Buffer[] = [];
  for (let offset = 0; offset < data.size;) {
    agent.send({ type: 'deploy.fetch', data: { deploy_id: data.deploy_id, offset, length: 4096 } });
    const frame = await waitFor(() => agent.binary.shift(), 5000, 'a chunk');
    expect(frame[0]).toBe(0x10);
    expect(Number(frame.readBigUInt64BE(5))).toBe(offset);
    parts.push(frame.subarray(13));
    offset += frame.length - 13;
    agent.send({ type: 'deploy.status', data: { deploy_id: data.deploy_id, state: 'downloading', bytes: offset } });
  }
  const bytes = Buffer.concat(parts);
  expect(crypto.createHash('sha256').update(bytes).digest('hex')).toBe(data.sha256);
  agent.send({ type: 'deploy.status', data: fail ? { deploy_id: data.deploy_id, state: 'failed', message: fail } : { deploy_id: data.deploy_id, state: 'done', bytes: bytes.length, message: `sha256 ${data.sha256} verified` } });
  return bytes;
}

describe('dvic artifacts and dvic deploy', () => {
  it('uploads, lists, deploys with per-node progress, and deletes', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-cli-art-')), 'model.bin');
    fs.writeFileSync(file, crypto.randomBytes(10_000));
    const uploaded = await dvic(['artifacts', 'upload', file, '--version', '3.1'], server().env);
    expect(uploaded.code, uploaded.stderr).toBe(0);
    expect(uploaded.stdout).toMatch(/^Uploaded model\.bin@3\.1 \(9\.8 KiB, file\) id [0-9a-f-]{36}\nsha256 [0-9a-f]{64}\n$/);
    const list = await dvic(['artifacts'], server().env);
    expect(list.stdout).toMatch(/^ID\s+NAME\s+VERSION\s+SIZE\s+FORMAT\s+SHA256\s+UPLOADED\n[0-9a-f]{8}\s+model\.bin\s+3\.1\s+9\.8 KiB\s+file/);

    const { agent } = await server().agent('cli-deploy', { room: 'lab' }, ['hardware', 'deploy']);
    const received = actAsDeployingAgent(agent);
    const run = await dvic(['deploy', 'model.bin@3.1', '--label', 'room=lab', '--path', '/opt/dvic-demos/model.bin', '--mode', '0644'], server().env);
    expect((await received).equals(fs.readFileSync(file))).toBe(true);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^deployment [0-9a-f-]{36}: model\.bin@3\.1 -> \/opt\/dvic-demos\/model\.bin\n/);
    expect(run.stdout).toMatch(/cli-deploy: done done - sha256 [0-9a-f]{64} verified\n/);
    expect(run.stdout).toMatch(/deployment [0-9a-f-]{36}: done\n$/);

    const id = /^deployment ([0-9a-f-]{36})/.exec(run.stdout)![1]!;
    const rollingBack = agent.next((m) => m.type === 'deploy.request' && (m.data as { action: string }).action === 'rollback', 10_000)
      .then(() => agent.send({ type: 'deploy.status', data: { deploy_id: id, state: 'done', message: 'rolled back' } }));
    const rollback = await dvic(['deploy', 'rollback', id], server().env);
    await rollingBack;
    expect(rollback.code, rollback.stdout + rollback.stderr).toBe(0);
    expect(rollback.stdout).toMatch(/cli-deploy: rolled_back done - rolled back\n/);
    expect(rollback.stdout).toMatch(/: rolled_back\n$/);

    const removed = await dvic(['artifacts', 'delete', 'model.bin@3.1'], server().env);
    expect(removed.stdout).toBe('Deleted model.bin@3.1\n');
    expect((await dvic(['artifacts'], server().env)).stdout).toMatch(/No artifacts/);
  });

  it('exits 1 with the node\'s reason when a node fails, and 2 on bad usage', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-cli-art-')), 'app.conf');
    fs.writeFileSync(file, 'x=1\n');
    expect((await dvic(['artifacts', 'upload', file, '--version', '1'], server().env)).code).toBe(0);
    const { agent } = await server().agent('cli-deploy-bad', undefined, ['hardware', 'deploy']);
    const received = actAsDeployingAgent(agent, 'path /etc/x is outside the allowed roots (/opt/dvic-demos)');
    const run = await dvic(['deploy', 'app.conf', 'cli-deploy-bad', '--path', '/etc/x'], server().env);
    await received;
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('cli-deploy-bad: failed failed - path /etc/x is outside the allowed roots (/opt/dvic-demos)');
    expect((await dvic(['deploy', 'app.conf', '--path', '/opt/dvic-demos/a'], server().env)).code).toBe(2);
    expect((await dvic(['deploy', 'nothing-like-it', '--all', '--path', '/opt/dvic-demos/a'], server().env)).stderr).toMatch(/no artifact "nothing-like-it"/);
  });
});
