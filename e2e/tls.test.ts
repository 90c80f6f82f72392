// The real server serving https and wss itself (DVIC_TLS_CERT/DVIC_TLS_KEY, a self-signed
// certificate made by the openssl CLI), its local agent over wss, and what it says when it starts.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, repoDir, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './support/processes.js';

const OPENSSL = '/usr/bin/openssl';
if (!fs.existsSync(OPENSSL) && process.env.CI) throw new Error('e2e TLS tests need openssl');

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: unknown }

/** An https request that trusts only this certificate. */
function request(url: string, ca: Buffer, options: { method?: string; headers?: Record<string, string>; body?: object } = {}): Promise<Answer> {
  const payload = options.body ? JSON.stringify(options.body) : undefined;
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: options.method ?? 'GET', ca, headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...options.headers } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

describe.skipIf(!fs.existsSync(OPENSSL) && !process.env.CI)('TLS served by the server', () => {
  let server: ServerProcess;
  let ca: Buffer;
  let base: string;
  let fingerprint: string;

  beforeAll(async () => {
    const dir = tempDir('dvic-tls-');
    const made = spawnSync(OPENSSL, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    ca = fs.readFileSync(path.join(dir, 'cert.pem'));
    const print = spawnSync(OPENSSL, ['x509', '-in', path.join(dir, 'cert.pem'), '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    fingerprint = print.stdout.trim().split('=')[1]!.replace(/:/g, '').toLowerCase();
    server = await startServer({ env: { DVIC_TLS_CERT: path.join(dir, 'cert.pem'), DVIC_TLS_KEY: path.join(dir, 'key.pem'), DVIC_LOCAL_AGENT: '1', DVIC_METRICS_INTERVAL_S: '1' } });
    base = `https://127.0.0.1:${server.port}`;
  });
  afterAll(async () => { await stopAll(); });

  it('serves the API over https with a Secure session cookie and HSTS', async () => {
    expect(server.output).toContain(`DVIC Demo Monitor is running: https://127.0.0.1:${server.port}/`);
    const login = await request(`${base}/api/v1/auth/login`, ca, { method: 'POST', body: { username: 'admin', password: ADMIN_PASSWORD } });
    expect(login.status).toBe(200);
    const cookie = String(login.headers['set-cookie']);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(login.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    const me = await request(`${base}/api/v1/auth/me`, ca, { headers: { cookie: cookie.split(';')[0]! } });
    expect(me.status).toBe(200);
  });

  it('runs its local agent over wss, and enrolls nodes with a wss:// URL and the certificate fingerprint', async () => {
    const login = await request(`${base}/api/v1/auth/login`, ca, { method: 'POST', body: { username: 'admin', password: ADMIN_PASSWORD } });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const local = await waitFor(async () => {
      const { nodes } = (await request(`${base}/api/v1/nodes`, ca, { headers: { cookie } })).body as { nodes: { is_local: boolean; status: string; hardware: unknown }[] };
      return nodes.find((n) => n.is_local && n.status === 'online' && n.hardware);
    }, 30_000, 'the local agent online over wss');
    expect(local).toBeTruthy();
    const agentConfig = JSON.parse(fs.readFileSync(path.join(server.dataDir, 'local-agent/agent.json'), 'utf8'));
    expect(agentConfig).toMatchObject({ server_url: `wss://127.0.0.1:${server.port}/api/v1/agent`, tls_cert_sha256: fingerprint });

    const enrolled = await request(`${base}/api/v1/nodes`, ca, { method: 'POST', headers: { cookie }, body: { name: 'pi-tls' } });
    expect(enrolled.status).toBe(201);
    expect((enrolled.body as { config: object }).config).toMatchObject({ server_url: `wss://127.0.0.1:${server.port}/api/v1/agent`, tls_cert_sha256: fingerprint });
  });
});

describe('what the server says when it starts', () => {
  afterAll(async () => { await stopAll(); });

  it('warns when it serves plain http on a non-loopback address', async () => {
    const open = await startServer({ env: { DVIC_HOST: '0.0.0.0' } });
    expect(open.output).toMatch(/WARNING: serving plain http on 0\.0\.0\.0: passwords, session cookies and terminal keystrokes cross the network in clear/);
    expect(open.output).toContain('DVIC_TLS_CERT and DVIC_TLS_KEY');
    await open.kill();
    const loopback = await startServer();
    expect(loopback.output).not.toContain('WARNING');
    await loopback.kill();
  });

  it('says that DVIC_ADMIN_PASSWORD is ignored once the admin exists, and reset-admin resets it', async () => {
    const dataDir = tempDir();
    const first = await startServer({ dataDir });
    expect(first.output).toContain('Admin login: admin / the password in DVIC_ADMIN_PASSWORD');
    await first.kill();
    const second = await startServer({ dataDir, env: { DVIC_ADMIN_PASSWORD: 'a-changed-password' } });
    expect(second.output).toContain('DVIC_ADMIN_PASSWORD is ignored: the admin account already exists');
    expect(second.output).toContain('npm run reset-admin');
    const signIn = (password: string) => fetch(`${second.baseUrl}/api/v1/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }),
    }).then((r) => r.status);
    expect(await signIn('a-changed-password')).toBe(401);

    const reset = spawnSync(process.execPath, [path.join(repoDir, 'server/dist/reset-admin.js')], { env: { ...process.env, DVIC_DATA_DIR: dataDir, DVIC_ADMIN_PASSWORD: '' }, encoding: 'utf8' });
    expect(reset.status, reset.stderr).toBe(0);
    const generated = /Admin login: admin \/ (\S+) {3}\(generated now and shown only once\)/.exec(reset.stdout)?.[1];
    expect(generated, reset.stdout).toBeTruthy();
    expect(await signIn(generated!)).toBe(200);
    const chosen = spawnSync(process.execPath, [path.join(repoDir, 'server/dist/reset-admin.js')], { env: { ...process.env, DVIC_DATA_DIR: dataDir, DVIC_ADMIN_PASSWORD: 'a-changed-password' }, encoding: 'utf8' });
    expect(chosen.stdout).toContain('Admin login: admin / the password in DVIC_ADMIN_PASSWORD');
    expect(await signIn('a-changed-password')).toBe(200);
    expect(await signIn(generated!)).toBe(401);
  });
});
