import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

let server: TestServer;
beforeAll(async () => { server = await startTestServer({ DVIC_ARTIFACT_MAX_MB: '4', DVIC_ARTIFACTS_MAX_MB: '6' }); });
afterAll(async () => { await server.close(); });

const MB = 1024 * 1024;

/** A body sent over real HTTP in pieces, never whole: as a large file would be. */
function pieces(total: number, seed = 1): { body: Readable; sha256: string } {
  const hash = crypto.createHash('sha256');
  const all: Buffer[] = [];
  for (let done = 0; done < total; done += 64 * 1024) {
    const piece = Buffer.alloc(Math.min(64 * 1024, total - done), (done / 1024 + seed) % 251);
    hash.update(piece);
    all.push(piece);
  }
  return { body: Readable.from(all), sha256: hash.digest('hex') };
}

async function upload(query: string, body: Readable | Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.baseUrl}/api/v1/artifacts?${query}`, {
    method: 'POST', headers: { cookie: server.cookie, 'content-type': 'application/octet-stream', ...headers },
    body: body instanceof Readable ? (Readable.toWeb(body) as ReadableStream) : body, duplex: 'half',
  } as RequestInit);
  return { status: res.status, json: (await res.json()) as { artifact?: Record<string, unknown>; error?: { code: string; message: string } } };
}

const artifactFiles = () => fs.readdirSync(path.join(server.dataDir, 'artifacts'));

describe('artifacts', () => {
  it('streams an upload to the data dir and answers its size and sha256', async () => {
    const { body, sha256 } = pieces(3 * MB);
    const res = await upload('name=robot-arm&version=1.2.0', body);
    expect(res.status).toBe(201);
    expect(res.json.artifact).toMatchObject({ name: 'robot-arm', version: '1.2.0', size: 3 * MB, sha256, format: 'file', created_by: 'admin' });
    const id = res.json.artifact!.id as string;
    expect(artifactFiles()).toContain(id);
    const listed = (await server.api('GET', '/api/v1/artifacts')).json().artifacts;
    expect(listed.map((a: { id: string }) => a.id)).toContain(id);
    const download = await fetch(`${server.baseUrl}/api/v1/artifacts/${id}/download`, { headers: { cookie: server.cookie } });
    expect(download.headers.get('content-length')).toBe(String(3 * MB));
    expect(crypto.createHash('sha256').update(Buffer.from(await download.arrayBuffer())).digest('hex')).toBe(sha256);
    const again = await upload('name=robot-arm&version=1.2.0', Buffer.from('x'));
    expect(again.status).toBe(409);
    expect(again.json.error!.message).toContain('already exists');
    expect((await server.api('DELETE', `/api/v1/artifacts/${id}`)).statusCode).toBe(200);
    expect(artifactFiles()).not.toContain(id);
    expect((await server.api('GET', `/api/v1/artifacts/${id}`)).statusCode).toBe(404);
  });

  it('sniffs archives, so only they may be extracted on deploy', async () => {
    const gz = await upload('name=app&version=1', Buffer.from([0x1f, 0x8b, 8, 0, 0, 0]));
    const zip = await upload('name=app&version=2', Buffer.from('PK\x03\x04rest'));
    expect([gz.json.artifact!.format, zip.json.artifact!.format]).toEqual(['tar.gz', 'zip']);
    const plain = await upload('name=app&version=3', Buffer.from('just text'));
    const res = await server.api('POST', '/api/v1/deployments', { artifact: plain.json.artifact!.id, targets: { all: true }, path: '/opt/dvic-demos/app', extract: true });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toContain('is not a .tar.gz or .zip');
  });

  it('refuses an upload past the cap with a clear 413, whether declared or streamed, and keeps nothing', async () => {
    const before = artifactFiles();
    const streamed = await upload('name=huge&version=1', pieces(5 * MB).body);
    expect(streamed.status).toBe(413);
    expect(streamed.json.error).toMatchObject({ code: 'payload_too_large' });
    expect(streamed.json.error!.message).toContain('DVIC_ARTIFACT_MAX_MB');
    const declared = await upload('name=huge&version=2', Buffer.alloc(10), { 'content-length': String(5 * MB) }).catch((err: Error) => ({ status: 0, json: { error: { code: err.message, message: '' } } }));
    expect([413, 0]).toContain(declared.status); // the server may close before the client finishes sending
    expect(artifactFiles().sort()).toEqual(before.sort());
    expect((await server.api('GET', '/api/v1/artifacts')).json().artifacts.map((a: { name: string }) => a.name)).not.toContain('huge');
  });

  it('two uploads at once cannot together exceed the store cap: the bytes in progress are reserved', async () => {
    const before = (await server.api('GET', '/api/v1/artifacts')).json<{ artifacts: { size: number }[] }>().artifacts;
    // Each body sends 2 MB, waits until the other has sent its 2 MB too, then sends 1.5 MB more: both are in
    // progress together, each under the 4 MB per-artifact cap, 7 MB together against the store's 6 MB.
    let atGate = 0;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => { open = resolve; });
    async function* gated(seed: number) {
      for (let sent = 0; sent < 2 * MB; sent += 64 * 1024) yield Buffer.alloc(64 * 1024, seed);
      if (++atGate === 2) open();
      await gate;
      for (let sent = 0; sent < 1.5 * MB; sent += 64 * 1024) yield Buffer.alloc(64 * 1024, seed);
    }
    const refused = (err: Error) => ({ status: 0, json: { error: { code: err.message, message: '' } } });
    const results = await Promise.all([1, 2].map((n) => upload(`name=parallel&version=${n}`, Readable.from(gated(n))).catch(refused)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect([0, 413]).toContain(statuses.find((s) => s !== 201)); // the server may close before the client finishes sending
    const after = (await server.api('GET', '/api/v1/artifacts')).json<{ artifacts: { id: string; name: string; size: number }[] }>().artifacts;
    expect(after.reduce((sum, a) => sum + a.size, 0)).toBeLessThanOrEqual(6 * MB);
    expect(after.filter((a) => a.name === 'parallel')).toHaveLength(1);
    await waitFor(() => artifactFiles().every((f) => !f.startsWith('.incoming-')), 5000, 'the refused upload removed');
    for (const a of after.filter((x) => x.name === 'parallel')) await server.api('DELETE', `/api/v1/artifacts/${a.id}`);
    expect(before.length).toBe(after.length - 1);
    // Its reservation is released: the store takes a full-size upload again.
    expect((await upload('name=parallel-after&version=1', pieces(3.5 * MB).body)).status).toBe(201);
    const done = (await server.api('GET', '/api/v1/artifacts')).json<{ artifacts: { id: string; name: string }[] }>().artifacts;
    for (const a of done.filter((x) => x.name === 'parallel-after')) await server.api('DELETE', `/api/v1/artifacts/${a.id}`);
  });

  it('keeps nothing of an upload the client breaks off, and goes on serving', async () => {
    const before = artifactFiles();
    const { port } = new URL(server.baseUrl);
    await new Promise<void>((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(`POST /api/v1/artifacts?name=cut&version=1 HTTP/1.1\r\nhost: 127.0.0.1\r\ncookie: ${server.cookie}\r\n`
          + `content-type: application/octet-stream\r\ncontent-length: ${2 * MB}\r\n\r\n`);
        socket.write(Buffer.alloc(256 * 1024, 7), () => { socket.destroy(); resolve(); });
      });
    });
    await waitFor(() => artifactFiles().every((f) => !f.startsWith('.incoming-')), 5000, 'the partial upload removed');
    expect(artifactFiles().sort()).toEqual(before.sort());
    expect((await server.api('GET', '/api/v1/artifacts')).json().artifacts.map((a: { name: string }) => a.name)).not.toContain('cut');
    expect((await upload('name=after-cut&version=1', Buffer.from('ok'))).status).toBe(201);
    // The cut upload may be staged only now (the server reads it after the socket is gone): it is removed all the same.
    await waitFor(() => artifactFiles().every((f) => !f.startsWith('.incoming-')), 5000, 'the partial upload removed');
  });

  it('refuses bad names, other content types and non-operators', async () => {
    expect((await upload('name=../etc&version=1', Buffer.from('x'))).status).toBe(400);
    expect((await upload('name=a%20b&version=1', Buffer.from('x'))).status).toBe(400);
    const json = await fetch(`${server.baseUrl}/api/v1/artifacts?name=a&version=1`, { method: 'POST', headers: { cookie: server.cookie, 'content-type': 'text/plain' }, body: 'x' });
    expect(json.status).toBe(415);
    // JSON is what every other route takes, not this one: the answer says what to send instead.
    const asJson = await fetch(`${server.baseUrl}/api/v1/artifacts?name=a&version=1`, { method: 'POST', headers: { cookie: server.cookie, 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(asJson.status).toBe(415);
    expect(((await asJson.json()) as { error: { message: string } }).error.message).toContain('application/octet-stream');
    const crossSite = await upload('name=a&version=1', Buffer.from('x'), { origin: 'https://evil.example' });
    expect(crossSite.status).toBe(403);
    const noAuth = await fetch(`${server.baseUrl}/api/v1/artifacts?name=a&version=1`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
    expect(noAuth.status).toBe(401);
  });
});

describe('deployments API', () => {
  it('refuses a path that is not absolute and normalized, an unknown artifact, and unmatched targets', async () => {
    const artifact = (await upload('name=conf&version=1', Buffer.from('a=1\n'))).json.artifact!;
    for (const bad of ['relative/x', '/opt/dvic-demos/../../etc/passwd', '/opt/dvic-demos/x/', '/']) {
      const res = await server.api('POST', '/api/v1/deployments', { artifact: artifact.id, targets: { all: true }, path: bad });
      expect(res.statusCode, bad).toBe(400);
    }
    const unknown = await server.api('POST', '/api/v1/deployments', { artifact: 'nope', targets: { all: true }, path: '/opt/dvic-demos/x' });
    expect(unknown.statusCode).toBe(404);
    const nobody = await server.api('POST', '/api/v1/deployments', { artifact: artifact.id, targets: { label: 'room=none' }, path: '/opt/dvic-demos/x' });
    expect(nobody.statusCode).toBe(400);
    expect(nobody.json().error.message).toBe('no node matches these targets');
    const shell = await server.api('POST', '/api/v1/deployments', { artifact: artifact.id, targets: { all: true }, path: '/opt/dvic-demos/x', mode: '7;rm' });
    expect(shell.statusCode).toBe(400);
  });

  it('takes null for an optional setting, as GET answers it: a client may send back what it read', async () => {
    const artifact = (await upload('name=conf&version=null', Buffer.from('a=0\n'))).json.artifact!;
    await server.enroll('null-pi');
    const body = { artifact: artifact.id, targets: { nodes: ['null-pi'] }, path: '/opt/dvic-demos/conf', mode: null, owner: null, pre_command: null, post_command: null };
    const res = await server.api('POST', '/api/v1/deployments', body);
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json().deployment).toMatchObject({ mode: null, owner: null, pre_command: null, post_command: null });
  });

  it('fails an offline or incapable node with a clear message, and rollback needs a node it reached', async () => {
    const artifact = (await upload('name=conf&version=2', Buffer.from('a=2\n'))).json.artifact!;
    const { node } = await server.enroll('offline-pi');
    const res = await server.api('POST', '/api/v1/deployments', { artifact: artifact.id, targets: { nodes: ['offline-pi'] }, path: '/opt/dvic-demos/conf' });
    expect(res.statusCode).toBe(202);
    const { id } = res.json();
    let view = res.json().deployment;
    for (let i = 0; i < 100 && view.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      view = (await server.api('GET', `/api/v1/deployments/${id}`)).json().deployment;
    }
    expect(view).toMatchObject({ state: 'failed', nodes: [{ node_id: node.id, node_name: 'offline-pi', result: 'failed', message: 'the node is offline' }] });
    const rollback = await server.api('POST', `/api/v1/deployments/${id}/rollback`);
    expect(rollback.statusCode).toBe(409);
    expect((await server.api('GET', '/api/v1/deployments')).json().deployments[0].id).toBe(id);
    const audit = (await server.api('GET', '/api/v1/audit?action=deploy')).json().entries;
    expect(audit[0]).toMatchObject({ username: 'admin', outcome: 'ok', details: { id } });
  });
});
