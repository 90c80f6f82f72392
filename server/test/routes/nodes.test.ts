import crypto from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
beforeEach(async () => { server = await startTestServer(); });
afterEach(async () => { await server.close(); });

describe('node enrollment', () => {
  it('returns a config whose private key matches the stored public key, and stores no private key', async () => {
    const { node, config } = await server.enroll('jetson-1', { room: 'lab' });
    expect(node).toMatchObject({ name: 'jetson-1', labels: { room: 'lab' }, status: 'offline', last_seen: null, hardware: null });
    expect(config.node_id).toBe(node.id);
    expect(config.server_url).toMatch(/^ws:\/\/.+\/api\/v1\/agent$/);
    const row = server.app.db.prepare('SELECT * FROM nodes WHERE id = ?').get(node.id) as { public_key: string };
    const message = Buffer.from('proof');
    const signature = crypto.sign(null, message, config.private_key);
    expect(crypto.verify(null, message, row.public_key, signature)).toBe(true);
    const everything = JSON.stringify(server.app.db.prepare('SELECT * FROM nodes').all());
    expect(everything).not.toContain('PRIVATE KEY');
  });

  it('uses DVIC_PUBLIC_URL for the agent URL when set', async () => {
    const other = await startTestServer({ DVIC_PUBLIC_URL: 'https://dvic.example.org/' });
    try {
      const { config } = await other.enroll('pi');
      expect(config.server_url).toBe('wss://dvic.example.org/api/v1/agent');
    } finally {
      await other.close();
    }
  });

  it('lists every replica of DVIC_REPLICA_URLS as server_urls, in order, in the configs of POST /nodes and of install links', async () => {
    const lab = await startTestServer({
      DVIC_PUBLIC_URL: 'https://dvic-1.example.org:8787',
      DVIC_REPLICA_URLS: 'https://dvic-1.example.org:8787, http://10.0.0.12:8787/, https://lab.example.org/dvic',
    });
    const replicas = ['wss://dvic-1.example.org:8787/api/v1/agent', 'ws://10.0.0.12:8787/api/v1/agent', 'wss://lab.example.org/dvic/api/v1/agent'];
    try {
      const { config } = await lab.enroll('pi');
      expect(config.server_url).toBe('wss://dvic-1.example.org:8787/api/v1/agent');
      expect(config.server_urls).toEqual(replicas);
      const { secret } = (await lab.api('POST', '/api/v1/enrollment-tokens', {})).json<{ secret: string }>();
      const exchanged = await lab.app.inject({ method: 'POST', url: '/api/v1/enrollment-tokens/exchange', payload: { token: secret, hostname: 'pi-2' } });
      expect(exchanged.statusCode).toBe(201);
      expect(exchanged.json()).toMatchObject({ server_url: 'wss://dvic-1.example.org:8787/api/v1/agent', server_urls: replicas });
    } finally {
      await lab.close();
    }
    // Without it, one server: no server_urls.
    expect((await server.enroll('pi-alone')).config).not.toHaveProperty('server_urls');
  });

  it('refuses a duplicate name with 409 and a bad name with 400', async () => {
    await server.enroll('pi-1');
    const dup = await server.api('POST', '/api/v1/nodes', { name: 'pi-1' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error).toEqual({ code: 'conflict', message: 'a node named "pi-1" already exists' });
    const badLabels = await server.api('POST', '/api/v1/nodes', { name: 'ok-name', labels: { 'a b': 'x' } });
    expect(badLabels.statusCode).toBe(400);
    for (const name of ['', '../etc', 'a b', 'x;rm -rf /', 'é'.repeat(3), 'n'.repeat(65)]) {
      const bad = await server.api('POST', '/api/v1/nodes', { name });
      expect(bad.statusCode, name).toBe(400);
      expect(bad.json().error.code).toBe('bad_request');
    }
  });
});

describe('node listing and editing', () => {
  it('lists nodes by name and finds one by id or by name', async () => {
    const b = await server.enroll('b-node');
    await server.enroll('a-node');
    const list = (await server.api('GET', '/api/v1/nodes')).json().nodes;
    expect(list.map((n: { name: string }) => n.name)).toEqual(['a-node', 'b-node']);
    expect((await server.api('GET', `/api/v1/nodes/${b.node.id}`)).json().node.name).toBe('b-node');
    expect((await server.api('GET', '/api/v1/nodes/b-node')).json().node.id).toBe(b.node.id);
    const missing = await server.api('GET', '/api/v1/nodes/nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
  });

  it('renames and relabels a node, and the change survives a restart of the registry', async () => {
    const { node } = await server.enroll('old-name');
    const res = await server.api('PATCH', `/api/v1/nodes/${node.id}`, { name: 'new-name', labels: { kind: 'pi' } });
    expect(res.json().node).toMatchObject({ name: 'new-name', labels: { kind: 'pi' } });
    const row = server.app.db.prepare('SELECT name, labels FROM nodes WHERE id = ?').get(node.id);
    expect(row).toEqual({ name: 'new-name', labels: '{"kind":"pi"}' });
  });
});
