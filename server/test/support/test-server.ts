import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentConfigFile, NodeView } from '@dvic/protocol';
import { buildApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { ensureAdmin } from '../../src/services/admin-bootstrap.js';

export const ADMIN_PASSWORD = 'correct horse battery staple';

/** An answer of inject(), as Fastify gives it (json<T>() says what a test expects it to hold). */
export type InjectedAnswer = Awaited<ReturnType<App['inject']>>;

export interface TestServer {
  app: App;
  dataDir: string;
  baseUrl: string;
  agentUrl: string;
  liveUrl: string;
  cookie: string;
  /** inject() as the signed-in admin. */
  api(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: object): Promise<InjectedAnswer>;
  enroll(name: string, labels?: Record<string, string>): Promise<{ node: NodeView; config: AgentConfigFile }>;
  /** Stops the server and starts it again on the same port and data: sessions, nodes and logs are kept. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

async function listen(dataDir: string, env: Record<string, string>, port = 0): Promise<{ app: App; address: string }> {
  const config = loadConfig({ DVIC_DATA_DIR: dataDir, DVIC_LOCAL_AGENT: '0', DVIC_FLUSH_INTERVAL_MS: '100', ...env });
  const app = await buildApp(config, false);
  await ensureAdmin(app.users, ADMIN_PASSWORD);
  const address = await app.listen({ host: '127.0.0.1', port });
  return { app, address };
}

/** A real server on an ephemeral loopback port with its own temporary data dir (or the given one, kept on close). */
export async function startTestServer(env: Record<string, string> = {}, options: { dataDir?: string } = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-test-'));
  const { app, address } = await listen(dataDir, env);
  const login = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'admin', password: ADMIN_PASSWORD } });
  const cookie = String(login.headers['set-cookie']).split(';')[0]!;
  const server: TestServer = {
    app, dataDir, baseUrl: address, cookie,
    agentUrl: `${address.replace('http', 'ws')}/api/v1/agent`,
    liveUrl: `${address.replace('http', 'ws')}/api/v1/live`,
    async api(method, url, body) {
      // State-changing requests are JSON, {} when there is nothing to send (as @dvic/client does).
      const payload = body ?? (method === 'GET' ? undefined : {});
      return server.app.inject({ method, url, headers: { cookie }, ...(payload ? { payload } : {}) });
    },
    async enroll(name, labels) {
      const res = await server.api('POST', '/api/v1/nodes', { name, ...(labels ? { labels } : {}) });
      if (res.statusCode !== 201) throw new Error(`enroll failed: ${res.statusCode} ${JSON.stringify(res.json())}`);
      return res.json<{ node: NodeView; config: AgentConfigFile }>();
    },
    async restart() {
      await server.app.close();
      server.app = (await listen(dataDir, env, Number(new URL(address).port))).app;
    },
    async close() {
      await server.app.close();
      if (!options.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

type Truthy<T> = Exclude<T, null | undefined | false | 0 | ''>;

/** Polls until the check returns a truthy value (bounded), and resolves with it. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
