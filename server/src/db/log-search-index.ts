import { BackgroundWorker } from './background-worker.js';
import { WAL_LIMIT_BYTES } from './checkpointer.js';
import type { Db } from './database.js';

/** The schema name under which the index file is attached to the main connection. */
export const SEARCH_SCHEMA = 'search';

// Contentless (the messages stay in log_records only), without positions (queries are words and
// prefixes, never phrases), rows deletable by rowid. indexed_up_to: every record with an id up to
// it is in the index; records after it are searched directly until the worker catches up.
const SCHEMA = `
  CREATE VIRTUAL TABLE IF NOT EXISTS ${SEARCH_SCHEMA}.log_fts USING fts5(message, content = '', contentless_delete = 1, detail = none);
  CREATE TABLE IF NOT EXISTS ${SEARCH_SCHEMA}.index_state (indexed_up_to INTEGER NOT NULL);
  INSERT INTO ${SEARCH_SCHEMA}.index_state SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM ${SEARCH_SCHEMA}.index_state);
`;

/**
 * Attaches the index file (created if needed, ':memory:' for an empty one) to the main
 * connection, for queries. An existing index is only read here: attaching works on a full disk.
 */
export function attachSearchIndex(db: Db, indexFile: string): void {
  db.prepare(`ATTACH DATABASE ? AS ${SEARCH_SCHEMA}`).run(indexFile);
  try {
    const created = db.prepare(`SELECT 1 FROM ${SEARCH_SCHEMA}.sqlite_master WHERE name = 'index_state'`).get() !== undefined;
    if (!created && db.pragma(`${SEARCH_SCHEMA}.page_count`, { simple: true }) === 0) db.pragma(`${SEARCH_SCHEMA}.auto_vacuum = INCREMENTAL`);
    db.pragma(`${SEARCH_SCHEMA}.journal_mode = WAL`);
    if (!created) db.transaction(() => db.exec(SCHEMA))();
  } catch (err) {
    db.exec(`DETACH DATABASE ${SEARCH_SCHEMA}`);
    throw err;
  }
}

/**
 * Records behind the index up to which their bytes are summed exactly; beyond, estimated. It runs
 * on the main thread at every retention look: a rebuilt index has the whole database behind it,
 * and summing millions of rows would stall the event loop for seconds.
 */
export const EXACT_BACKLOG_ROWS = 20_000;

/**
 * Bytes (log_records.size) of the records the index has not taken yet: they are searched directly
 * meanwhile. Summed when few; otherwise their count (ids follow each other: retention deletes the
 * oldest) times the average stored record (`storedBytes` over the rows), from index lookups only.
 */
export function unindexedRecordBytes(db: Db, storedBytes: number): number {
  const ids = db.prepare(`SELECT COALESCE(MIN(id), 0) AS first, COALESCE(MAX(id), 0) AS last, (SELECT indexed_up_to FROM ${SEARCH_SCHEMA}.index_state) AS indexed FROM log_records`)
    .get() as { first: number; last: number; indexed: number };
  const behind = ids.last - Math.max(ids.indexed, ids.first - 1);
  if (behind <= 0) return 0;
  if (behind <= EXACT_BACKLOG_ROWS) {
    return db.prepare('SELECT COALESCE(SUM(size), 0) FROM log_records WHERE id > ?').pluck().get(ids.indexed) as number;
  }
  return Math.round(behind * (storedBytes / (ids.last - ids.first + 1)));
}

export interface IndexerOptions {
  onError?: (message: string) => void;
  walLimitBytes?: number;
  minFreeBytes?: number;
}

/**
 * The full-text index of log messages, in its own SQLite file, kept up to date by a worker thread
 * (server/workers/log-search-indexer.mjs). Storing a record never waits for indexing, which costs
 * more than the insert itself; a lost or deleted index file is rebuilt from log_records.
 */
export class LogSearchIndex {
  private readonly background: BackgroundWorker;
  private readonly forgetting = new Map<number, () => void>();
  private nextRef = 0;
  /** The index grew (it takes room too: log retention looks again). */
  onIndexed: () => void = () => undefined;

  /**
   * Starts the worker; the index file must exist (attachSearchIndex creates it). Under
   * minFreeBytes free on the index's disk, indexing waits (searches read the records meanwhile).
   */
  constructor(logsFile: string, indexFile: string, options: IndexerOptions = {}) {
    const { onError = () => undefined, walLimitBytes = WAL_LIMIT_BYTES, minFreeBytes = 0 } = options;
    this.background = new BackgroundWorker('log-search-indexer.mjs', { logsFile, indexFile, walLimitBytes, minFreeBytes });
    this.background.worker.on('message', (message: { type: string; message: string; ref: number }) => {
      if (message.type === 'error') onError(message.message);
      if (message.type === 'forgotten') this.settle(message.ref);
      if (message.type === 'indexed') this.onIndexed();
    });
    this.background.worker.on('error', (err) => onError(err.message));
    this.background.worker.on('exit', () => { for (const ref of [...this.forgetting.keys()]) this.settle(ref); });
  }

  /** New records were committed: index them soon. */
  wake(): void {
    this.background.worker.postMessage({ type: 'wake' });
  }

  /**
   * These records were deleted: takes them out of the index and gives the freed pages back to the
   * filesystem. Resolves once done (or after 30 s, or when the worker is gone: never hangs).
   */
  forget(ids: number[]): Promise<void> {
    if (!ids.length) return Promise.resolve();
    const ref = ++this.nextRef;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(ref), 30_000);
      this.forgetting.set(ref, () => { clearTimeout(timer); resolve(); });
      this.background.worker.postMessage({ type: 'forget', ids, ref });
    });
  }

  private settle(ref: number): void {
    this.forgetting.get(ref)?.();
    this.forgetting.delete(ref);
  }

  stop(): Promise<void> {
    return this.background.stop({ type: 'stop' });
  }
}
