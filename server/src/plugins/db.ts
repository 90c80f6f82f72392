import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { ServerConfig } from '../config.js';
import type { Db } from '../db/database.js';
import { migratePostgres } from '../db/postgres-migrate.js';
import { PostgresSql } from '../db/postgres-sql.js';
import type { Sql } from '../db/sql.js';
import { SqliteSql } from '../db/sqlite-sql.js';
import { Store } from '../db/store.js';
import { FaultInjector } from '../services/fault-injection.js';
import { walLimitFor } from '../services/log-retention.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: ServerConfig;
    /**
     * The SQLite files: database, WAL checkpoints and the search index worker (db/store.ts).
     * Absent on PostgreSQL (DVIC_DATABASE_URL), which has none of them.
     */
    store: Store | undefined;
    /** The SQLite connection under `sql`; on PostgreSQL there is none and reading it throws (use `sql`). */
    db: Db;
    /** The database as repositories use it (db/sql.ts): the same async code path on SQLite and PostgreSQL. */
    sql: Sql;
    /** Test-only failure points (DVIC_TEST_FAULTS). */
    faults: FaultInjector;
  }
}

/**
 * The database, migrated, closed last: the SQLite file in the data dir, or PostgreSQL when
 * DVIC_DATABASE_URL names one (scale-out: several replicas share it).
 */
export const dbPlugin = fp<{ config: ServerConfig }>(async (app, { config }) => {
  app.decorate('config', config);
  app.decorate('faults', FaultInjector.fromSpec(config.testFaults));
  if (config.databaseUrl) await openPostgres(app, config.databaseUrl, config.databasePoolSize);
  else openSqlite(app, config);
}, { name: 'db' });

/**
 * SQLite: on a disk too full even to open it normally it opens degraded (reads work) and recovers
 * once there is room (db/store.ts).
 */
function openSqlite(app: FastifyInstance, config: ServerConfig): void {
  const store = Store.open(config.dataDir, app.log.child({ component: 'store' }), {
    walLimitBytes: walLimitFor(config.logRetentionBytes, config.minFreeBytes), minFreeBytes: config.minFreeBytes,
  });
  app.decorate('store', store);
  app.decorate('db', store.db);
  app.decorate('sql', new SqliteSql(store.db, { onCallbackError: callbackErrorsTo(app) }));
  app.addHook('onClose', async () => store.close());
}

/** PostgreSQL: migrated first (one replica at a time), then a pool of DVIC_DATABASE_POOL connections. */
async function openPostgres(app: FastifyInstance, url: string, poolSize: number): Promise<void> {
  const log = app.log.child({ component: 'postgres' });
  await migratePostgres(url);
  const sql = new PostgresSql({
    url, poolSize, onCallbackError: callbackErrorsTo(app),
    onIdleError: (err) => log.warn({ err }, 'an idle PostgreSQL connection failed (the next statement opens another)'),
  });
  log.info({ database: sql.where, poolSize }, 'using PostgreSQL');
  app.decorate('store', undefined);
  app.decorate('db', {
    getter(): Db {
      throw new Error(`app.db is the SQLite connection; this server runs on PostgreSQL (${sql.where}): use app.sql`);
    },
  });
  app.decorate('sql', sql);
  app.addHook('onClose', async () => sql.close());
}

/** An afterCommit callback that threw: its change is committed, the others ran; the log says which failed. */
function callbackErrorsTo(app: FastifyInstance) {
  const log = app.log.child({ component: 'sql' });
  return (err: Error) => log.error({ err }, 'an afterCommit callback failed after the commit (the change is stored; the later callbacks ran)');
}
