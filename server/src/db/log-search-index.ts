import { BackgroundWorker } from './background-worker.js';
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
 * The full-text index of log messages, in its own SQLite file, kept up to date by a worker thread
 * (server/workers/log-search-indexer.mjs). Storing a record never waits for indexing, which costs
 * more than the insert itself; a lost or deleted index file is rebuilt from log_records.
 */
export class LogSearchIndex {
  private readonly background: BackgroundWorker;

  /** Starts the worker; the index file must exist (attachSearchIndex creates it). */
  constructor(logsFile: string, indexFile: string, onError: (message: string) => void = () => undefined) {
    this.background = new BackgroundWorker('log-search-indexer.mjs', { logsFile, indexFile });
    this.background.worker.on('message', (message: { type: string; message: string }) => { if (message.type === 'error') onError(message.message); });
    this.background.worker.on('error', (err) => onError(err.message));
  }

  /** New records were committed: index them soon. */
  wake(): void {
    this.background.worker.postMessage({ type: 'wake' });
  }

  /** These records were deleted: take them out of the index. */
  forget(ids: number[]): void {
    if (ids.length) this.background.worker.postMessage({ type: 'forget', ids });
  }

  stop(): Promise<void> {
    return this.background.stop({ type: 'stop' });
  }
}
