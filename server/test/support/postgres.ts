import crypto from 'node:crypto';
import pg from 'pg';

// The real PostgreSQL of this machine, on loopback (trust, user postgres). A test takes a database
// of its own and drops it after.
export const PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** Whether PostgreSQL answers; under CI=true a missing one throws (a failure, never a skip). */
export async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch (err) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL at ${PG_ADMIN_URL} is needed by these tests: ${(err as Error).message}`, { cause: err });
    return false;
  }
}

async function asAdmin(text: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(text);
  } finally {
    await admin.end();
  }
}

/**
 * A database of the test's own (`dvic_test_<random>`, empty), dropped by the returned function.
 * Same signature as pg-work's helper, whose `migrated: true` (its default) also runs the server's migrations.
 */
export async function testDatabase(_options: { migrated: false }): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `dvic_test_${crypto.randomBytes(6).toString('hex')}`;
  await asAdmin(`CREATE DATABASE ${name}`);
  return { url: `postgres://postgres@127.0.0.1:5432/${name}`, drop: () => asAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
