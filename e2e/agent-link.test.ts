// The agent's link to the server: a quiet node stays connected (the server's pings are traffic),
// a link that went dead without a close is noticed and replaced, and over TLS only the pinned
// certificate is accepted. Real server, real agent.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { AgentConfigFile, NodeView } from '@dvic/protocol';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { getNode } from './support/api.js';
import { setupNode } from './support/logs.js';
import { ADMIN_PASSWORD, sleep, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig } from './support/processes.js';

afterEach(async () => { await stopAll(); });
afterAll(async () => { await stopAll(); });

// Pings every second, no hardware report for an hour: only pings cross a quiet link.
const quietServer = { DVIC_PING_INTERVAL_MS: '1000', DVIC_METRICS_INTERVAL_S: '3600' };
const dropped = /connection closed|reconnecting|nothing from the server/;

describe('the link to the server', () => {
  it('a quiet node stays connected: the server\'s pings count as traffic', async () => {
    const { api, node, agent } = await setupNode('quiet', { dead_link_s: 2.5 }, quietServer);
    const since = (await getNode(api, node.id)).status_since;
    await sleep(9000); // more than three dead-link periods with nothing but pings
    expect(agent.output).not.toMatch(dropped);
    const view = await getNode(api, node.id);
    expect(view.status).toBe('online');
    expect(view.status_since).toBe(since);
  });

  it('a link that went silent is noticed within dead_link_s, and the agent connects again', async () => {
    const { api, node, agent, server } = await setupNode('silent', { dead_link_s: 2 }, quietServer);
    server.signal('SIGSTOP'); // the TCP connection stays up; nothing comes through it
    try {
      await agent.waitForOutput('nothing from the server for 2 s', 10_000);
    } finally {
      server.signal('SIGCONT');
    }
    await waitFor(async () => /connected to/.test(agent.output.split('nothing from the server')[1] ?? '') && (await getNode(api, node.id)).status === 'online',
      30_000, 'the agent connected again');
  });
});

/** JSON over https that trusts only this certificate, signed in as the admin (fetch cannot be told a CA). */
async function tlsSession(base: string, ca: Buffer) {
  const send = (method: string, url: string, body?: object, cookie = '') => new Promise<{ cookie: string; body: unknown }>((resolve, reject) => {
    const payload = body ? JSON.stringify(body) : undefined;
    // Trusts this certificate alone, whatever its names (as the agent does with its pin).
    const req = https.request(base + url, { method, ca, checkServerIdentity: () => undefined, headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...(cookie ? { cookie } : {}) } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => { text += chunk; });
      res.on('end', () => resolve({ cookie: String(res.headers['set-cookie'] ?? '').split(';')[0]!, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(payload);
  });
  const { cookie } = await send('POST', '/api/v1/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
  return async <T>(method: string, url: string, body?: object) => (await send(method, url, body, cookie)).body as T;
}

describe('a server with its own TLS certificate', () => {
  it('the agent accepts the pinned certificate only, and says so when it is another', async () => {
    const dir = tempDir('dvic-agent-tls-');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=lab-server', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const server = await startServer({ env: { DVIC_TLS_CERT: path.join(dir, 'cert.pem'), DVIC_TLS_KEY: path.join(dir, 'key.pem') } });
    const api = await tlsSession(`https://127.0.0.1:${server.port}`, fs.readFileSync(path.join(dir, 'cert.pem')));
    const { node, config } = await api<{ node: NodeView; config: AgentConfigFile }>('POST', '/api/v1/nodes', { name: 'pinned' });
    expect(config).toMatchObject({ server_url: expect.stringMatching(/^wss:/), tls_cert_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const status = async () => (await api<{ node: NodeView }>('GET', `/api/v1/nodes/${node.id}`)).node.status;
    const pinned = startAgent(writeAgentConfig(tempDir(), config, { tls_cert_sha256: config.tls_cert_sha256 }));
    await waitFor(async () => (await status()) === 'online', 15_000, 'the agent online over wss');
    await pinned.kill();
    const other = startAgent(writeAgentConfig(tempDir(), config, { tls_cert_sha256: '0'.repeat(64) }));
    await other.waitForOutput('is not the pinned one (tls_cert_sha256 0000', 15_000);
    expect(await status()).not.toBe('online');
  });
});
