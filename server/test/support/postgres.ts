import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll } from 'vitest';
import { migratePostgres } from '../../src/db/postgres-migrate.js';

/** The real PostgreSQL of this machine, on loopback (user postgres, trust). */
export const PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

let reachable: Promise<boolean> | undefined;

/**
 * Whether PostgreSQL answers (asked once per test process). Under CI=true an unreachable one
 * throws: a failure, never a skip.
 */
export function postgresReachable(): Promise<boolean> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.end();
      return true;
    } catch (err) {
      if (process.env.CI === 'true') throw new Error(`PostgreSQL at ${PG_ADMIN_URL} is needed by the store tests: ${(err as Error).message}`, { cause: err });
      return false;
    }
  })();
  return reachable;
}

async function asAdmin(statement: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(statement);
  } finally {
    await admin.end();
  }
}

const newName = () => `dvic_test_${crypto.randomBytes(6).toString('hex')}`;
const urlOf = (name: string) => `postgres://postgres@127.0.0.1:5432/${name}`;
const dropDatabase = (name: string) => asAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);

/**
 * A migrated database this test file copies for each migrated test database (a copy takes a
 * fraction of the time of running every migration again); dropped after the file.
 */
let template: Promise<string> | undefined;
afterAll(async () => {
  const made = await template?.catch(() => undefined);
  if (made) await dropDatabase(made);
});

function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const name = newName();
    await asAdmin(`CREATE DATABASE ${name}`);
    try {
      await migratePostgres(urlOf(name));
    } catch (err) {
      await dropDatabase(name);
      throw err;
    }
    return name;
  })();
  return template;
}

/** A database of the test's own (dvic_test_<random>), migrated unless told otherwise; drop() removes it. */
export async function testDatabase(options: { migrated?: boolean } = {}): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = newName();
  await asAdmin(options.migrated ?? true ? `CREATE DATABASE ${name} TEMPLATE ${await migratedTemplate()}` : `CREATE DATABASE ${name}`);
  return { url: urlOf(name), drop: () => dropDatabase(name) };
}
