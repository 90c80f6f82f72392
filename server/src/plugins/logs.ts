import fp from 'fastify-plugin';
import { LogsRepository } from '../repositories/logs-repository.js';
import type { Store } from '../db/store.js';
import { LogRetention, walLimitFor, type DiskFigures, type RetentionStore } from '../services/log-retention.js';
import { LogWriter } from '../services/log-writer.js';
import { WAL_FILES } from '../services/storage-monitor.js';

declare module 'fastify' {
  interface FastifyInstance {
    logStore: LogsRepository;
    logWriter: LogWriter;
    logRetention: LogRetention;
  }
}

/** What retention needs of SQLite's files, when there are none (PostgreSQL). */
const NO_FILES: RetentionStore = { compact: () => true, truncateWal: () => true };
const NO_FILE_FIGURES = (): DiskFigures => ({ usedBytes: 0, walBytes: 0, dataBytes: 0, freeBytes: Number.POSITIVE_INFINITY });

/**
 * Demo and system logs: the store, the batching writer and retention, which keeps the files under
 * DVIC_LOG_RETENTION_MB and the disk above DVIC_MIN_FREE_MB. While the disk is full or retention
 * is behind, batches are refused (logs.nack) and the agents send them again later.
 */
export const logsPlugin = fp(async (app) => {
  const { config, db, store, storage } = app;
  // PostgreSQL (no store): the search vector is in each row, and the database's files are its own
  // (autovacuum reuses the room): retention there goes by age only (docs/scale-out.md).
  const searchIndex = store?.searchIndexer ?? { wake: () => undefined, forget: async () => undefined, onIndexed: () => undefined };
  const logStore = new LogsRepository(db);
  const logWriter = new LogWriter(db, logStore, app.demoRegistry, app.faults, app.log.child({ component: 'log-writer' }));
  // Each look retention takes also refreshes the storage state: a fast stream meets the floor at once.
  const disk = (sqlite: Store) => () => {
    const { used_bytes: usedBytes, free_bytes: freeBytes } = storage.check();
    return { usedBytes, freeBytes, walBytes: storage.usedBytes(WAL_FILES), dataBytes: sqlite.dataBytes() };
  };
  const logRetention = new LogRetention(logStore, store ?? NO_FILES, searchIndex, store ? disk(store) : NO_FILE_FIGURES, {
    maxAgeMs: config.logRetentionMs, maxBytes: config.logRetentionBytes, minFreeBytes: config.minFreeBytes,
    walLimitBytes: walLimitFor(config.logRetentionBytes, config.minFreeBytes), intervalMs: config.logRetentionIntervalMs,
  }, app.log.child({ component: 'log-retention' }));
  logWriter.on('records', () => {
    searchIndex.wake();
    logRetention.written();
  });
  logWriter.on('failure', (failure) => storage.writeFailed(failure));
  logWriter.refusal = () => storage.refusal ?? logRetention.refusal;
  searchIndex.onIndexed = () => logRetention.schedule();
  storage.on('changed', ({ state }) => { if (state === 'low' || state === 'full') logRetention.schedule(); });
  logRetention.start();
  app.decorate('logStore', logStore);
  app.decorate('logWriter', logWriter);
  app.decorate('logRetention', logRetention);
  app.addHook('onClose', async () => {
    await logRetention.stop();
    logWriter.flush();
  });
}, { name: 'logs', dependencies: ['db', 'demos', 'storage'] });
