import fp from 'fastify-plugin';
import type { ServerConfig } from '../config.js';
import type { Db } from '../db/database.js';
import type { Sql } from '../db/sql.js';
import { SqliteSql } from '../db/sqlite-sql.js';
import { Store } from '../db/store.js';
import { FaultInjector } from '../services/fault-injection.js';
import { walLimitFor } from '../services/log-retention.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: ServerConfig;
    /** The SQLite files: database, WAL checkpoints and the search index worker (db/store.ts). */
    store: Store;
    db: Db;
    /** The database as repositories use it (db/sql.ts): the same async code path on SQLite and PostgreSQL. */
    sql: Sql;
    /** Test-only failure points (DVIC_TEST_FAULTS). */
    faults: FaultInjector;
  }
}

/**
 * The SQLite database in the data dir, migrated, closed last. On a disk too full even to open it
 * normally it opens degraded (reads work) and recovers once there is room (db/store.ts).
 */
export const dbPlugin = fp<{ config: ServerConfig }>(async (app, { config }) => {
  const store = Store.open(config.dataDir, app.log.child({ component: 'store' }), {
    walLimitBytes: walLimitFor(config.logRetentionBytes, config.minFreeBytes), minFreeBytes: config.minFreeBytes,
  });
  app.decorate('config', config);
  app.decorate('store', store);
  app.decorate('db', store.db);
  app.decorate('sql', new SqliteSql(store.db));
  app.decorate('faults', FaultInjector.fromSpec(config.testFaults));
  app.addHook('onClose', async () => store.close());
}, { name: 'db' });
