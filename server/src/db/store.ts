import fs from 'node:fs';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { passingStoreFailure } from '../services/store-failure.js';
import { Checkpointer, WAL_LIMIT_BYTES } from './checkpointer.js';
import { migrate, openDatabase, type Db } from './database.js';
import { attachSearchIndex, LogSearchIndex, SEARCH_SCHEMA, unindexedRecordBytes } from './log-search-index.js';
import { migrations } from './migrations/index.js';

export const DB_FILE = 'dvic.sqlite';
/** Versioned: an index made by a server that folded text differently is rebuilt under a new name. */
export const SEARCH_FILE = 'dvic-search-v2.sqlite';
const OLD_SEARCH_FILES = ['dvic-search.sqlite'];

export interface StoreLimits {
  /** The WAL is checkpointed past this size, and cut back to it when it restarts. */
  walLimitBytes: number;
  /** Under twice this much free space, the index stops growing, as new logs do (DVIC_MIN_FREE_MB). */
  minFreeBytes: number;
}

/** The database cannot be opened at all (e.g. its schema must change and the disk is full). */
export class StoreUnavailableError extends Error {}

/** Pages incremental vacuum gives back per step (1 MiB of 4 KiB pages), and steps per compaction. */
const VACUUM_STEP_PAGES = 256;
const MAX_VACUUM_STEPS = 10_000;

/**
 * The index's bytes per record byte, until the index holds enough records to measure it: the top
 * of what FTS5 without positions takes for log lines (about 0.4 to 0.7). Higher, a rebuilt index
 * (the whole database its backlog) would make retention delete records that fit.
 */
const DEFAULT_INDEX_PER_RECORD_BYTE = 0.7;
/** Indexed record bytes from which the index's own ratio is trusted (below, its empty structure weighs too much). */
const MIN_INDEXED_FOR_RATIO = 256 * 1024;

/** Record ids waiting to leave the index while its worker is not running; beyond, they stay (harmless: they match no record). */
const MAX_FORGOTTEN = 1_000_000;

/**
 * The full-text indexer as the rest of the server uses it. Its worker runs only while the store
 * is not degraded; until then wake-ups are moot and deletions wait here.
 */
export class SearchIndexer {
  private worker: LogSearchIndex | undefined;
  private forgotten: number[] = [];
  /** The index grew: called after each chunk the worker indexed. */
  onIndexed: () => void = () => undefined;

  wake(): void {
    this.worker?.wake();
  }

  /** Resolves once the index let go of the records (at once while its worker does not run). */
  async forget(ids: number[]): Promise<void> {
    if (this.worker) return this.worker.forget(ids);
    for (const id of ids.slice(0, MAX_FORGOTTEN - this.forgotten.length)) this.forgotten.push(id);
  }

  run(worker: LogSearchIndex): void {
    this.worker = worker;
    worker.onIndexed = () => this.onIndexed();
    void worker.forget(this.forgotten);
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
  private indexPerRecordByte = DEFAULT_INDEX_PER_RECORD_BYTE;

  private constructor(
    readonly db: Db,
    readonly dataDir: string,
    private degradedMode: boolean,
    private readonly limits: StoreLimits,
    private readonly log: FastifyBaseLogger,
  ) {
    db.pragma(`journal_size_limit = ${limits.walLimitBytes}`);
  }

  static open(dataDir: string, log: FastifyBaseLogger, limits: StoreLimits = { walLimitBytes: WAL_LIMIT_BYTES, minFreeBytes: 0 }): Store {
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
    const store = new Store(db, dataDir, degraded, limits, log);
    store.attachIndex();
    if (!degraded) store.convertToIncrementalVacuum();
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

  /**
   * Gives the pages of deleted rows back to the filesystem: a truncating checkpoint empties the
   * WAL, then incremental vacuum moves pages from the end of the file into the free ones and cuts
   * the file, a few hundred pages at a time, each step's moves checkpointed before the next: the
   * WAL never needs more than a step's room. The index file is compacted by its worker
   * (SearchIndexer.forget). Errors are the caller's.
   */
  compact(): boolean {
    if (!this.truncateWal()) return false;
    for (let step = 0; step < MAX_VACUUM_STEPS; step++) {
      const free = this.db.pragma('freelist_count', { simple: true }) as number;
      if (free === 0) break;
      this.db.pragma(`incremental_vacuum(${VACUUM_STEP_PAGES})`);
      if (!this.truncateWal()) return false;
      if ((this.db.pragma('freelist_count', { simple: true }) as number) >= free) break;
    }
    return true;
  }

  /**
   * A truncating checkpoint of the database from the writer's own connection (so no write can
   * starve it), and of the index when its worker is not writing; false when another checkpoint of
   * the database was running (the next call does it).
   */
  truncateWal(): boolean {
    if (this.degradedMode) return true;
    const [result] = this.db.pragma('main.wal_checkpoint(TRUNCATE)') as { busy: number }[];
    this.truncateIndexWalIfIdle();
    return result?.busy === 0;
  }

  /**
   * The index's WAL is its worker's (truncated after each removal); emptied from here only when
   * free at once: waiting (busy_timeout) for the worker's transaction would hold up the main thread.
   */
  private truncateIndexWalIfIdle(): void {
    if (this.indexInMemory) return;
    const timeout = this.db.pragma('busy_timeout', { simple: true }) as number;
    this.db.pragma('busy_timeout = 0');
    try {
      this.db.pragma(`${SEARCH_SCHEMA}.wal_checkpoint(TRUNCATE)`);
    } finally {
      this.db.pragma(`busy_timeout = ${timeout}`);
    }
  }

  /**
   * What the database and the index hold, in pages in use: their size once the WAL is
   * checkpointed and free pages are given back (or, in a file not converted to incremental
   * vacuum, reused), whatever the files measure at this moment.
   */
  dataBytes(): number {
    return this.pagesInUse('main') + this.pagesInUse(SEARCH_SCHEMA);
  }

  /**
   * What the index will add once its worker has taken the records it is behind on: their bytes
   * times the index's bytes per record byte. A busy machine leaves the worker far behind a fast
   * stream, and the index then grows by a third of the database at once: the size cap counts it
   * ahead. 0 while no worker indexes (degraded, index in memory): nothing grows then.
   * `storedBytes`: the record bytes stored (LogsRepository.storedBytes).
   */
  indexBacklogBytes(storedBytes: number): number {
    if (!this.indexerRunning || this.indexInMemory) return 0;
    const pending = unindexedRecordBytes(this.db, storedBytes);
    const indexed = storedBytes - pending;
    if (indexed >= MIN_INDEXED_FOR_RATIO) this.indexPerRecordByte = this.pagesInUse(SEARCH_SCHEMA) / indexed;
    return Math.round(pending * this.indexPerRecordByte);
  }

  private pagesInUse(schema: string): number {
    const pages = (this.db.pragma(`${schema}.page_count`, { simple: true }) as number) - (this.db.pragma(`${schema}.freelist_count`, { simple: true }) as number);
    return pages * (this.db.pragma(`${schema}.page_size`, { simple: true }) as number);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await Promise.all([this.searchIndexer.stop(), this.checkpointer?.stop()]);
    this.db.close();
  }

  /**
   * Files created before incremental vacuum keep the pages of deleted rows forever (reused, never
   * given back). Converting takes a VACUUM, which rewrites the file: done at start, once, when the
   * disk has room for a second copy; otherwise at a later start (retention counts free pages as
   * reusable meanwhile).
   */
  private convertToIncrementalVacuum(): void {
    for (const schema of this.indexInMemory ? ['main'] : ['main', SEARCH_SCHEMA]) {
      if (this.db.pragma(`${schema}.auto_vacuum`, { simple: true }) === 2) continue;
      const file = path.join(this.dataDir, schema === 'main' ? DB_FILE : SEARCH_FILE);
      const size = fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
      const { bavail, bsize } = fs.statfsSync(this.dataDir);
      if (bavail * bsize < 2 * size + 16 * 1024 * 1024) {
        this.log.warn({ file, bytes: size }, 'not enough room to convert this file to incremental vacuum: deleted logs keep their pages in it (tried again at the next start)');
        continue;
      }
      const started = Date.now();
      try {
        this.db.pragma(`${schema}.auto_vacuum = INCREMENTAL`);
        this.db.exec(schema === 'main' ? 'VACUUM' : `VACUUM ${schema}`);
        this.log.info({ file, bytes: size, ms: Date.now() - started }, 'converted to incremental vacuum (once): deleted logs give their space back');
      } catch (err) {
        if (!passingStoreFailure(err)) throw err;
        this.log.warn({ file, code: codeOf(err) }, 'could not convert to incremental vacuum (tried again at the next start)');
      }
    }
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
    this.removeOldIndexes();
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

  /** The index files of earlier versions: rebuilt under the new name, so the old ones go. */
  private removeOldIndexes(): void {
    for (const name of OLD_SEARCH_FILES) {
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(path.join(this.dataDir, name + suffix), { force: true });
    }
  }

  private detachIndex(): void {
    if (this.db.prepare('SELECT 1 FROM pragma_database_list WHERE name = ?').get(SEARCH_SCHEMA)) this.db.exec(`DETACH DATABASE ${SEARCH_SCHEMA}`);
  }

  /** Worker threads need the normal locking mode; the indexer also needs the index file. */
  private startWorkers(): void {
    if (this.degradedMode) return;
    this.checkpointer ??= new Checkpointer(this.db, this.file, 1000, (err) => this.log.warn({ err }, 'WAL checkpoints stay in the main thread'), this.limits.walLimitBytes);
    if (this.indexInMemory || this.indexerRunning) return;
    this.indexerRunning = true;
    this.searchIndexer.run(new LogSearchIndex(this.file, path.join(this.dataDir, SEARCH_FILE), {
      ...this.limits, onError: (message) => this.log.warn({ component: 'log-search-index' }, `full-text indexing: ${message}`),
    }));
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
