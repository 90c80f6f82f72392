import crypto from 'node:crypto';
import pg from 'pg';
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

/** A database of the test's own (dvic_test_<random>), migrated unless told otherwise; drop() removes it. */
export async function testDatabase(options: { migrated?: boolean } = {}): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `dvic_test_${crypto.randomBytes(6).toString('hex')}`;
  await asAdmin(`CREATE DATABASE ${name}`);
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;
  const drop = () => asAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  try {
    if (options.migrated ?? true) await migratePostgres(url);
  } catch (err) {
    await drop();
    throw err;
  }
  return { url, drop };
}
