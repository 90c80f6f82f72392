import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { DB_FILE } from '../../src/db/store.js';
import { postgresReachable, testDatabase } from '../support/postgres.js';
import { ADMIN_PASSWORD, startTestServer } from '../support/test-server.js';

const reachable = await postgresReachable();
const UNCONVERTED = 'app.db is the SQLite connection; this server runs on PostgreSQL';

describe('the server on PostgreSQL (DVIC_DATABASE_URL)', () => {
  it('does not start when the database cannot be reached, and says where without the password', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-pg-'));
    try {
      const config = loadConfig({ DVIC_DATA_DIR: dataDir, DVIC_LOCAL_AGENT: '0', DVIC_DATABASE_URL: 'postgres://dvic:pw-secret@127.0.0.1:1/dvic' });
      const started = buildApp(config, false);
      await expect(started).rejects.toThrow(/^PostgreSQL at 127\.0\.0\.1:1\/dvic is unreachable: (?!.*pw-secret)/);
      await expect(started).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it.runIf(reachable)('migrates its own database, serves /healthz and signs the bootstrap admin in, keeping nothing in SQLite', async (context) => {
    const database = await testDatabase({ migrated: false });
    const server = await startTestServer({ DVIC_DATABASE_URL: database.url, DVIC_DATABASE_POOL: '4' }).catch(async (err: unknown) => {
      await database.drop();
      // Needs every repository on app.sql (the async store conversion, issue 17 step 1). Until it
      // is merged, the first plugin that reads app.db stops the start: skipped for that reason
      // only, any other failure fails.
      if (err instanceof Error && err.message.startsWith(UNCONVERTED)) context.skip(`repositories still on app.db: ${err.message}`);
      throw err;
    });
    try {
      expect((await server.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ ok: true });
      const login = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'admin', password: ADMIN_PASSWORD } });
      expect(login.statusCode).toBe(200);
      const cookie = String(login.headers['set-cookie']).split(';')[0]!;
      const me = await server.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie } });
      expect(me.json()).toMatchObject({ user: { username: 'admin' } });
      // The session lives in PostgreSQL: it holds across a restart of the server.
      await server.restart();
      expect((await server.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie } })).statusCode).toBe(200);
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      const users = await client.query('SELECT username FROM users');
      await client.end();
      expect(users.rows).toEqual([{ username: 'admin' }]);
      expect(fs.existsSync(path.join(server.dataDir, DB_FILE))).toBe(false);
    } finally {
      await server.close();
      await database.drop();
    }
  });
});
