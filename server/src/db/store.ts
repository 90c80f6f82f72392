import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { passingStoreFailure } from '../services/store-failure.js';
import { Checkpointer } from './checkpointer.js';
import { migrate, openDatabase, type Db } from './database.js';
import { attachSearchIndex, LogSearchIndex, SEARCH_SCHEMA } from './log-search-index.js';
import { migrations } from './migrations.js';

export const DB_FILE = 'dvic.sqlite';
export const SEARCH_FILE = 'dvic-search.sqlite';

/** The database cannot be opened at all (e.g. its schema must change and the disk is full). */
export class StoreUnavailableError extends Error {}

/** Record ids waiting to leave the index while its worker is not running; beyond, they stay (harmless: they match no record). */
const MAX_FORGOTTEN = 1_000_000;

/**
 * The full-text indexer as the rest of the server uses it. Its worker runs only while the store
 * is not degraded; until then wake-ups are moot and deletions wait here.
 */
export class SearchIndexer {
  private worker: LogSearchIndex | undefined;
  private forgotten: number[] = [];

  wake(): void {
    this.worker?.wake();
  }

  forget(ids: number[]): void {
    if (this.worker) this.worker.forget(ids);
    else for (const id of ids.slice(0, MAX_FORGOTTEN - this.forgotten.length)) this.forgotten.push(id);
  }

  run(worker: LogSearchIndex): void {
    this.worker = worker;
    worker.forget(this.forgotten);
    this.forgotten = [];
  }

  async stop(): Promise<void> {
    await this.worker?.stop();
  }
}

/**
 * The server's SQLite files: the database (WAL mode) with the full-text index attached, a worker
 * thread that checkpoints the WAL and one that keeps the index.
 *
 * On a disk too full for SQLite's shared-memory file (-shm), the store opens degraded: exclusive
 * locking mode (the WAL index lives in memory), no worker threads (SQLite checkpoints inside
 * commits, new records are searched without the index). Reads work, writes fail with SQLITE_FULL
 * until there is room; recover() then returns to normal mode on the same connection, so every
 * prepared statement stays valid and nothing restarts.
 */
export class Store {
  readonly searchIndexer = new SearchIndexer();
  private checkpointer: Checkpointer | undefined;
  private indexInMemory = false;
  private indexerRunning = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    readonly db: Db,
    readonly dataDir: string,
    private degradedMode: boolean,
    private readonly log: FastifyBaseLogger,
  ) {}

  static open(dataDir: string, log: FastifyBaseLogger): Store {
    const file = path.join(dataDir, DB_FILE);
    let db: Db;
    let degraded = false;
    try {
      db = openDatabase(file);
    } catch (err) {
      if (!passingStoreFailure(err)) throw err;
      log.warn({ code: codeOf(err) }, 'the disk has no room for the database\'s shared-memory file: opening it degraded (exclusive mode, no worker threads) until there is');
      db = openDegraded(file);
      degraded = true;
    }
    const store = new Store(db, dataDir, degraded, log);
    store.attachIndex();
    store.startWorkers();
    return store;
  }

  /** Opened without the shared-memory file (the disk was full): see recover(). */
  get degraded(): boolean {
    return this.degradedMode;
  }

  get file(): string {
    return path.join(this.dataDir, DB_FILE);
  }

  /**
   * Once the disk has room: leaves degraded mode (normal locking and the shared-memory file, by
   * a journal mode round trip on the same connection), attaches the index file if it had to live
   * in memory, and starts the worker threads. Tries again by itself while there is not enough room.
   */
  recover(): void {
    clearTimeout(this.retryTimer);
    if (this.closed || this.normal) return;
    try {
      if (this.degradedMode) this.leaveExclusiveMode();
      if (this.indexInMemory) this.attachIndex();
    } catch (err) {
      if (!passingStoreFailure(err)) throw err;
      this.log.warn({ code: codeOf(err) }, 'the database stays degraded: not enough room yet');
    }
    this.startWorkers();
    if (this.normal) this.log.info('the database is back to normal: WAL checkpoints and full-text indexing run again');
    else this.retryTimer = setTimeout(() => this.recover(), 5000).unref();
  }

  private get normal(): boolean {
    return !this.degradedMode && !this.indexInMemory;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await Promise.all([this.searchIndexer.stop(), this.checkpointer?.stop()]);
    this.db.close();
  }

  private leaveExclusiveMode(): void {
    this.db.pragma('journal_mode = DELETE');
    this.db.pragma(`${SEARCH_SCHEMA}.journal_mode = DELETE`);
    this.db.pragma('locking_mode = NORMAL');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`${SEARCH_SCHEMA}.journal_mode = WAL`);
    this.degradedMode = false;
  }

  /** The index file, or (when the disk cannot hold it even empty) an empty index in memory: searches then read every record. */
  private attachIndex(): void {
    this.detachIndex();
    try {
      attachSearchIndex(this.db, path.join(this.dataDir, SEARCH_FILE));
      this.indexInMemory = false;
    } catch (err) {
      if (!passingStoreFailure(err)) throw err;
      this.detachIndex();
      if (!this.indexInMemory) this.log.warn({ code: codeOf(err) }, 'no room for the full-text index file: searching without it until there is');
      attachSearchIndex(this.db, ':memory:');
      this.indexInMemory = true;
    }
  }

  private detachIndex(): void {
    if (this.db.prepare('SELECT 1 FROM pragma_database_list WHERE name = ?').get(SEARCH_SCHEMA)) this.db.exec(`DETACH DATABASE ${SEARCH_SCHEMA}`);
  }

  /** Worker threads need the normal locking mode; the indexer also needs the index file. */
  private startWorkers(): void {
    if (this.degradedMode) return;
    this.checkpointer ??= new Checkpointer(this.db, this.file, 1000, (err) => this.log.warn({ err }, 'WAL checkpoints stay in the main thread'));
    if (this.indexInMemory || this.indexerRunning) return;
    this.indexerRunning = true;
    this.searchIndexer.run(new LogSearchIndex(this.file, path.join(this.dataDir, SEARCH_FILE),
      (message) => this.log.warn({ component: 'log-search-index' }, `full-text indexing: ${message}`)));
  }
}

const codeOf = (err: unknown) => (err as { code?: string }).code;

/** Exclusive mode needs no room to read; a pending schema change needs some, and says so. */
function openDegraded(file: string): Db {
  const unavailable = (what: string, err: unknown) => {
    if (!passingStoreFailure(err)) return err;
    return new StoreUnavailableError(`${what}: its disk is full or not writable (${codeOf(err)}). Free some space on that disk and start again.`);
  };
  let db: Db;
  try {
    db = openDatabase(file, [], { exclusive: true });
  } catch (err) {
    throw unavailable(`cannot open the database ${file}`, err);
  }
  const version = db.pragma('user_version', { simple: true }) as number;
  try {
    migrate(db, migrations);
  } catch (err) {
    db.close();
    throw unavailable(`the database ${file} needs a schema update (version ${version} to ${migrations.at(-1)!.version}) that cannot be written`, err);
  }
  return db;
}
