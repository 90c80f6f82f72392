// Route schemas are compiled on first use (start-up time). These tests keep that invisible: every
// route's schemas still compile (built eagerly, as Fastify does by default), and a lazily
// compiled route answers exactly as an eagerly compiled one, errors and coercion included.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { ensureAdmin } from '../../src/services/admin-bootstrap.js';

const PASSWORD = 'correct horse battery staple';

async function appWith(eagerSchemas: boolean): Promise<{ app: App; cookie: string; dataDir: string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-schemas-'));
  const config = loadConfig({ DVIC_DATA_DIR: dataDir, DVIC_LOCAL_AGENT: '0' });
  const app = await buildApp(config, false, { eagerSchemas });
  await app.ready();
  await ensureAdmin(app.users, PASSWORD);
  const login = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'admin', password: PASSWORD } });
  return { app, cookie: String(login.headers['set-cookie']).split(';')[0]!, dataDir };
}

describe('route schemas compiled on first use', () => {
  let eager: Awaited<ReturnType<typeof appWith>>;
  let lazy: Awaited<ReturnType<typeof appWith>>;
  beforeAll(async () => {
    // ready() compiles every route's schemas here: one that does not compile fails this hook.
    eager = await appWith(true);
    lazy = await appWith(false);
  }, 60_000);
  afterAll(async () => {
    for (const { app, dataDir } of [eager, lazy]) {
      await app?.close();
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  const requests = [
    { name: 'a body with an unknown field', method: 'POST', url: '/api/v1/nodes', payload: { name: 'pi-1', colour: 'red' } },
    { name: 'a body of the wrong type', method: 'POST', url: '/api/v1/nodes', payload: { name: { first: 'pi' } } },
    { name: 'a query number out of range', method: 'GET', url: '/api/v1/logs?limit=0' },
    { name: 'a query number as text', method: 'GET', url: '/api/v1/logs?limit=many' },
    { name: 'a coerced query number', method: 'GET', url: '/api/v1/logs?limit=3' },
    { name: 'a response serialized by its schema', method: 'GET', url: '/api/v1/auth/me' },
    { name: 'a created resource', method: 'POST', url: '/api/v1/nodes', payload: { name: 'pi-2' } },
  ] as const;

  it.each(requests)('$name: the same answer either way', async (request) => {
    const answers = await Promise.all([eager, lazy].map(({ app, cookie }) =>
      app.inject({ method: request.method, url: request.url, headers: { cookie }, ...('payload' in request ? { payload: request.payload } : {}) })));
    const [fromEager, fromLazy] = answers.map((a) => ({ status: a.statusCode, body: scrub(a.body) }));
    expect(fromLazy).toEqual(fromEager);
    // The requests above mean something: the bad ones are refused, the good ones are not.
    expect(fromLazy!.status).toBe(request.name.startsWith('a body') || request.name.startsWith('a query number') ? 400 : request.method === 'POST' ? 201 : 200);
  });
});

/** Ids, keys and times (ISO or epoch ms) differ between two servers; everything else must match. */
function scrub(body: string): unknown {
  return JSON.parse(body.replace(/"[0-9a-f]{8}-[0-9a-f-]{27}"/g, '"<id>"').replace(/"\d{4}-\d\d-\d\dT[\d:.]+Z"/g, '"<time>"').replace(/-----BEGIN[^"]*-----/g, '<pem>').replace(/\b\d{13}\b/g, '0'));
}
