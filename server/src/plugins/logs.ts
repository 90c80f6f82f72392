import fp from 'fastify-plugin';
import type { Store } from '../db/store.js';
import { RecentLines } from '../live/recent-lines.js';
import { LogsRepository } from '../repositories/logs-repository.js';
import { LogRetention, walLimitFor, type DiskFigures, type RetentionIndex, type RetentionStore } from '../services/log-retention.js';
import { LogWriter } from '../services/log-writer.js';
import { PostgresLogSpace } from '../services/postgres-log-space.js';
import { WAL_FILES, type StorageMonitor } from '../services/storage-monitor.js';

declare module 'fastify' {
  interface FastifyInstance {
    logStore: LogsRepository;
    logWriter: LogWriter;
    logRetention: LogRetention;
    /** The last lines of each demo, read synchronously (alerts carry them). */
    recentLines: RecentLines;
  }
}

/** Last log lines kept per demo (an alert about a demo carries them). */
const RECENT_LINES = 10;

interface RetentionParts {
  store: RetentionStore;
  index: RetentionIndex;
  measure: () => DiskFigures | Promise<DiskFigures>;
  /** New records were committed (the SQLite search index indexes them). */
  written: () => void;
}

/** SQLite: the files in the data dir, the free space of its disk, the FTS5 index in its own file and worker. */
function sqliteParts(store: Store, storage: StorageMonitor, logStore: LogsRepository): RetentionParts {
  // Each look retention takes also refreshes the storage state: a fast stream meets the floor at once.
  const measure = () => {
    const { used_bytes: usedBytes, free_bytes: freeBytes } = storage.check();
    return {
      usedBytes, freeBytes, walBytes: storage.usedBytes(WAL_FILES), dataBytes: store.dataBytes(), indexBacklogBytes: store.indexBacklogBytes(logStore.storedBytes),
    };
  };
  return { store, index: store.searchIndexer, measure, written: () => store.searchIndexer.wake() };
}

/** PostgreSQL: the log table's size; the GIN index follows by itself. */
function postgresParts(logStore: LogsRepository): RetentionParts {
  const space = new PostgresLogSpace(logStore);
  return { store: space, index: space, measure: space.measure, written: () => undefined };
}

/**
 * Demo and system logs: the store, the batching writer and retention, which keeps the store under
 * DVIC_LOG_RETENTION_MB and (SQLite) the disk above DVIC_MIN_FREE_MB. While the disk is full or
 * retention is behind, batches are refused (logs.nack) and the agents send them again later.
 */
export const logsPlugin = fp(async (app) => {
  const { config, sql, store, storage } = app;
  const logStore = await LogsRepository.open(sql);
  // PostgreSQL has no store of files (app.store is SQLite's).
  const parts = store ? sqliteParts(store, storage, logStore) : postgresParts(logStore);
  const logWriter = new LogWriter(sql, logStore, app.demoRegistry, app.faults, app.log.child({ component: 'log-writer' }));
  const logRetention = new LogRetention(logStore, parts.store, parts.index, parts.measure, {
    maxAgeMs: config.logRetentionMs, maxBytes: config.logRetentionBytes, minFreeBytes: config.minFreeBytes,
    walLimitBytes: walLimitFor(config.logRetentionBytes, config.minFreeBytes), intervalMs: config.logRetentionIntervalMs,
  }, app.log.child({ component: 'log-retention' }));
  const recentLines = new RecentLines(logStore, RECENT_LINES, app.log.child({ component: 'recent-lines' }));
  logWriter.on('records', (records) => {
    parts.written();
    recentLines.add(records);
    logRetention.written();
  });
  logWriter.on('failure', (failure) => storage.writeFailed(failure));
  logWriter.refusal = () => storage.refusal ?? logRetention.refusal;
  if (store) store.searchIndexer.onIndexed = () => logRetention.schedule();
  storage.on('changed', ({ state }) => { if (state === 'low' || state === 'full') logRetention.schedule(); });
  logRetention.start();
  app.decorate('logStore', logStore);
  app.decorate('logWriter', logWriter);
  app.decorate('logRetention', logRetention);
  app.decorate('recentLines', recentLines);
  app.addHook('onClose', async () => {
    await logRetention.stop();
    await logWriter.flush();
  });
}, { name: 'logs', dependencies: ['db', 'demos', 'storage'] });
