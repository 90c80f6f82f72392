import path from 'node:path';
import fp from 'fastify-plugin';
import { LogSearchIndex } from '../db/log-search-index.js';
import { LogsRepository } from '../repositories/logs-repository.js';
import { LogRetention } from '../services/log-retention.js';
import { LogWriter } from '../services/log-writer.js';
import { DB_FILE, SEARCH_INDEX_FILE } from './db.js';

declare module 'fastify' {
  interface FastifyInstance {
    logStore: LogsRepository;
    logWriter: LogWriter;
    logRetention: LogRetention;
  }
}

/** Demo and system logs: the store, the batching writer, the full-text index and retention. */
export const logsPlugin = fp(async (app) => {
  const { config, db, storage } = app;
  const logStore = new LogsRepository(db);
  const searchIndex = new LogSearchIndex(path.join(config.dataDir, DB_FILE), path.join(config.dataDir, SEARCH_INDEX_FILE),
    (message) => app.log.warn({ component: 'log-search-index' }, `full-text indexing: ${message}`));
  const logWriter = new LogWriter(db, logStore, app.demoRegistry, app.faults, app.log.child({ component: 'log-writer' }));
  const logRetention = new LogRetention(logStore, searchIndex, {
    maxAgeMs: config.logRetentionMs, maxBytes: config.logRetentionBytes, intervalMs: config.logRetentionIntervalMs,
  }, app.log.child({ component: 'log-retention' }));
  logWriter.on('records', () => searchIndex.wake());
  logWriter.on('failure', (failure) => storage.writeFailed(failure));
  const followStorage = () => { logWriter.refuseWith = storage.refusal; };
  storage.on('changed', followStorage);
  followStorage();
  logRetention.start();
  app.decorate('logStore', logStore);
  app.decorate('logWriter', logWriter);
  app.decorate('logRetention', logRetention);
  app.addHook('onClose', async () => {
    logRetention.stop();
    logWriter.flush();
    await searchIndex.stop();
  });
}, { name: 'logs', dependencies: ['db', 'demos', 'storage'] });
