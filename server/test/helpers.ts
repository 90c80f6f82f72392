import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { ensureAdmin } from '../src/services/admin-bootstrap.js';

export const ADMIN_PASSWORD = 'correct horse battery staple';

export interface TestServer {
  app: App;
  dataDir: string;
  baseUrl: string;
  agentUrl: string;
  liveUrl: string;
  cookie: string;
  /** inject() as the signed-in admin. */
  api(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: object): Promise<{ statusCode: number; json: () => any; headers: Record<string, unknown> }>;
  enroll(name: string, labels?: Record<string, string>): Promise<{ node: any; config: { server_url: string; node_id: string; private_key: string } }>;
  close(): Promise<void>;
}

/** A real server on an ephemeral loopback port with its own temporary data dir (or the given one, kept on close). */
export async function startTestServer(env: Record<string, string> = {}, options: { dataDir?: string } = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-test-'));
  const config = loadConfig({ DVIC_DATA_DIR: dataDir, DVIC_LOCAL_AGENT: '0', DVIC_FLUSH_INTERVAL_MS: '100', ...env });
  const app = await buildApp(config, false);
  await ensureAdmin(app.services.users, ADMIN_PASSWORD);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const login = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'admin', password: ADMIN_PASSWORD } });
  const cookie = String(login.headers['set-cookie']).split(';')[0]!;
  const api: TestServer['api'] = async (method, url, body) => {
    const res = await app.inject({ method, url, headers: { cookie }, ...(body ? { payload: body } : {}) });
    return { statusCode: res.statusCode, json: () => res.json(), headers: res.headers };
  };
  return {
    app, dataDir, baseUrl: address, cookie, api,
    agentUrl: `${address.replace('http', 'ws')}/api/v1/agent`,
    liveUrl: `${address.replace('http', 'ws')}/api/v1/live`,
    async enroll(name, labels) {
      const res = await api('POST', '/api/v1/nodes', { name, ...(labels ? { labels } : {}) });
      if (res.statusCode !== 201) throw new Error(`enroll failed: ${res.statusCode} ${JSON.stringify(res.json())}`);
      return res.json();
    },
    async close() {
      await app.close();
      if (!options.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls until the check returns a truthy value (bounded). */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
