import path from 'node:path';
import fp from 'fastify-plugin';
import type { ServerConfig } from '../config.js';
import { Checkpointer } from '../db/checkpointer.js';
import { openDatabase, type Db } from '../db/database.js';
import { attachSearchIndex } from '../db/log-search-index.js';
import { FaultInjector } from '../services/fault-injection.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: ServerConfig;
    db: Db;
    /** Test-only failure points (DVIC_TEST_FAULTS). */
    faults: FaultInjector;
  }
}

export const DB_FILE = 'dvic.sqlite';
export const SEARCH_INDEX_FILE = 'dvic-search.sqlite';

/** The SQLite database in the data dir (migrated, WAL checkpointed off the main thread), closed last. */
export const dbPlugin = fp<{ config: ServerConfig }>(async (app, { config }) => {
  const file = path.join(config.dataDir, DB_FILE);
  const db = openDatabase(file);
  attachSearchIndex(db, path.join(config.dataDir, SEARCH_INDEX_FILE));
  const checkpointer = new Checkpointer(db, file, 1000, (err) => app.log.warn({ err }, 'WAL checkpoints stay in the main thread'));
  app.decorate('config', config);
  app.decorate('db', db);
  app.decorate('faults', FaultInjector.fromSpec(config.testFaults));
  app.addHook('onClose', async () => {
    await checkpointer.stop();
    db.close();
  });
}, { name: 'db' });
