// The way back in (npm run reset-admin) on every store: the admin account reset or made again,
// its sessions ended, the reset audited; on PostgreSQL the script finds the database by DVIC_DATABASE_URL.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PostgresSql } from '../../src/db/postgres-sql.js';
import { AuditRepository } from '../../src/repositories/audit-repository.js';
import { SessionsRepository } from '../../src/repositories/sessions-repository.js';
import { UsersRepository } from '../../src/repositories/users-repository.js';
import { resetAdmin } from '../../src/services/admin-reset.js';
import { verifyPassword } from '../../src/services/passwords.js';
import { postgresReachable, testDatabase } from '../support/postgres.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

const RESET_ADMIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/reset-admin.js');

describe.each(storeKinds)('admin reset on $name', (kind) => {
  let store: StoreUnderTest;
  let users: UsersRepository;
  beforeEach(async () => {
    store = await kind.open();
    users = new UsersRepository(store.sql);
  });
  afterEach(async () => store.close());

  it('gives a disabled, demoted admin its role back with the new password, ends its sessions and audits it', async () => {
    const admin = await users.create('admin', 'old-hash', 'admin');
    await users.update(admin.id, { role: 'viewer', disabled: true });
    await new SessionsRepository(store.sql).create('session-hash', admin.id, 60_000);
    const reset = await resetAdmin(store.sql, 'a new password 123');
    expect(reset).toEqual({ username: 'admin', password: 'a new password 123', generated: false, created: false });
    expect(await users.findById(admin.id)).toMatchObject({ role: 'admin', disabledAt: null });
    expect(await verifyPassword('a new password 123', (await users.passwordHash(admin.id))!)).toBe(true);
    expect(await new SessionsRepository(store.sql).find('session-hash')).toBeUndefined();
    const { entries } = await new AuditRepository(store.sql).search({ limit: 5, action: 'admin.reset' });
    expect(entries).toMatchObject([{ username: 'admin', target: String(admin.id), details: { created: false, generated: false, by: 'reset-admin script' } }]);
  });

  it('makes the admin account again when it was removed, with a generated password', async () => {
    const reset = await resetAdmin(store.sql, undefined);
    expect(reset).toMatchObject({ created: true, generated: true });
    const admin = (await users.findWithHash('admin'))!;
    expect(admin.role).toBe('admin');
    expect(await verifyPassword(reset.password, admin.passwordHash)).toBe(true);
  });
});

describe.runIf(await postgresReachable())('npm run reset-admin with DVIC_DATABASE_URL', () => {
  it('resets the admin of the PostgreSQL database and says where, never with a password', async () => {
    const database = await testDatabase({ migrated: false });
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [RESET_ADMIN], {
        env: { ...process.env, DVIC_DATABASE_URL: database.url, DVIC_ADMIN_PASSWORD: 'from the environment 1', DVIC_DATA_DIR: '/nonexistent' },
      });
      expect(stdout).toContain(`Created the admin account in 127.0.0.1:5432/${new URL(database.url).pathname.slice(1)}`);
      expect(stdout).toContain('Admin login: admin / the password in DVIC_ADMIN_PASSWORD');
      const sql = new PostgresSql({ url: database.url, poolSize: 1 });
      try {
        const admin = (await new UsersRepository(sql).findWithHash('admin'))!;
        expect(await verifyPassword('from the environment 1', admin.passwordHash)).toBe(true);
      } finally {
        await sql.close();
      }
    } finally {
      await database.drop();
    }
  });
});
