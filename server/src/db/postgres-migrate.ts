import pg from 'pg';
import { migrations, type Migration } from './migrations/index.js';
import { describeDatabase } from './postgres-sql.js';

/** The advisory lock every replica takes before it looks at the schema version. */
const LOCK_KEY = 'dvic:schema-migrations';

/**
 * Brings a PostgreSQL database to `target` (default: the newest migration), up or down, like
 * migrate() in database.ts does for SQLite. The applied versions are rows of schema_migrations.
 *
 * Each step runs in its own transaction holding pg_advisory_xact_lock, and reads the version
 * again under it: replicas that start together take turns, and a step one of them made is not
 * made again by the next.
 */
export async function migratePostgres(url: string, list: Migration[] = migrations, target = Math.max(0, ...list.map((m) => m.version))): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`PostgreSQL at ${describeDatabase(url)} is unreachable: ${(err as Error).message}`, { cause: err });
  }
  client.on('error', () => undefined); // a broken connection fails the step that uses it
  try {
    while (await step(client, list, target));
  } finally {
    await client.end();
  }
}

/** The applied version (0 before the first migration). */
export async function postgresSchemaVersion(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ version: string | null }>('SELECT max(version) AS version FROM schema_migrations');
  return Number(rows[0]?.version ?? 0);
}

/** One migration, up or down, in a transaction of its own; false once the schema is at target. */
async function step(client: pg.Client, list: Migration[], target: number): Promise<boolean> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    BIGINT PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at BIGINT NOT NULL
    )`);
    const current = await postgresSchemaVersion(client);
    const next = target > current
      ? list.find((m) => m.version > current && m.version <= target)
      : [...list].reverse().find((m) => m.version <= current && m.version > target);
    if (next) {
      const up = next.version > current;
      const direction = up ? 'up' : 'down';
      await client.query(next.postgres[direction]).catch((err: Error) => {
        throw new Error(`migration ${next.version} (${next.name}) ${direction} failed: ${err.message}`, { cause: err });
      });
      if (up) await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [next.version, next.name, Date.now()]);
      else await client.query('DELETE FROM schema_migrations WHERE version >= $1', [next.version]);
    }
    await client.query('COMMIT');
    return next !== undefined;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
