import { Worker } from 'node:worker_threads';
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

/** Attaches the index file (created if needed) to the main connection, for queries. */
export function attachSearchIndex(db: Db, indexFile: string): void {
  db.prepare(`ATTACH DATABASE ? AS ${SEARCH_SCHEMA}`).run(indexFile);
  db.pragma(`${SEARCH_SCHEMA}.journal_mode = WAL`);
  db.exec(SCHEMA);
}

/**
 * The full-text index of log messages, in its own SQLite file, kept up to date by a worker thread
 * (server/workers/log-search-indexer.mjs). Storing a record never waits for indexing, which costs
 * more than the insert itself; a lost or deleted index file is rebuilt from log_records.
 */
export class LogSearchIndex {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  /** Starts the worker; the index file must exist (attachSearchIndex creates it). */
  constructor(logsFile: string, indexFile: string, onError: (message: string) => void = () => undefined) {
    // Same relative path from src/db (tests) and dist/db (the built server).
    this.worker = new Worker(new URL('../../workers/log-search-indexer.mjs', import.meta.url), { workerData: { logsFile, indexFile } });
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (message: { type: string; message: string }) => { if (message.type === 'error') onError(message.message); });
    this.worker.on('error', (err) => onError(err.message));
  }

  /** New records were committed: index them soon. */
  wake(): void {
    this.worker.postMessage({ type: 'wake' });
  }

  /** These records were deleted: take them out of the index. */
  forget(ids: number[]): void {
    if (ids.length) this.worker.postMessage({ type: 'forget', ids });
  }

  async stop(): Promise<void> {
    this.worker.ref(); // let the worker finish its transaction before the process may exit
    this.worker.postMessage({ type: 'stop' });
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref());
    await Promise.race([this.exited, timeout]);
    await this.worker.terminate();
  }
}
