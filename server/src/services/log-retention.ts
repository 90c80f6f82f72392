import type { FastifyBaseLogger } from 'fastify';
import { ErrorCode } from '@dvic/protocol';
import type { LogsRepository } from '../repositories/logs-repository.js';
import type { StoreFailure } from './store-failure.js';

const CHUNK = 10_000;
const MAX_CHUNKS_PER_RUN = 100;
/** Measure, delete, give back, measure again: at most this many rounds per run (the next run goes on). */
const MAX_ROOM_PASSES = 50;
/**
 * One round deletes at most this share of the cap, and of the free space: deleting rows and
 * moving pages to give them back both go through the WAL first, so a round takes room before it
 * gives room back; small rounds keep that small.
 */
const ROUND_SHARE_OF_CAP = 0.1;
const ROUND_SHARE_OF_FREE = 0.1;
/** Over the cap, the files are brought back to this share of it, so a stream does not trigger a run per batch. */
const CAP_LOW_WATER = 0.9;
/**
 * Past this share of the cap, or under twice the floor of free space (logs coming faster than
 * retention deletes), new log batches are refused until it catches up: the files stay near the
 * cap, and the free space above the floor, whatever transient room deleting and indexing take.
 */
const CAP_CEILING = 1.1;
const FLOOR_MARGIN = 2;
/** Under twice the floor, retention makes room up to this many floors free, so refusing and accepting do not alternate per batch. */
const FLOOR_TARGET = 2.25;
/** Past twice its limit, the WAL is truncated here (by the writer); at 4 times, new logs wait until it is. */
const WAL_TRUNCATE = 2;
const WAL_BACKLOG = 4;

/**
 * The WAL size the checkpointer keeps to (db/checkpointer.ts): a small share of the cap and of the
 * free-space floor, so the WAL never takes over either.
 */
export const walLimitFor = (maxBytes: number, minFreeBytes: number): number =>
  Math.round(Math.max(256 * 1024, Math.min(16 * 1024 * 1024, maxBytes / 20, minFreeBytes > 0 ? minFreeBytes / 8 : Number.POSITIVE_INFINITY)));

export interface RetentionLimits {
  maxAgeMs: number;
  /** DVIC_LOG_RETENTION_MB: the store's files (database, WAL, search index and its WAL) stay under it. */
  maxBytes: number;
  /** DVIC_MIN_FREE_MB: under twice this free (storage state low), the oldest logs make room. */
  minFreeBytes: number;
  /** The WAL size the checkpointer keeps to (walLimitFor); at WAL_BACKLOG times it, logs wait too. */
  walLimitBytes: number;
  intervalMs: number;
}

/** The data once the index has caught up: what the cap is held to (the index lags behind a fast stream, then grows at once). */
const expectedData = ({ dataBytes, indexBacklogBytes }: DiskFigures): number => dataBytes + indexBacklogBytes;

/** The disk as retention needs it. */
export interface DiskFigures {
  /** The store's files as they are on disk (SQLite: database, index, their WALs; PostgreSQL: the log table with its indexes). */
  usedBytes: number;
  walBytes: number;
  /** Pages in use in the database and the index: what deleting rows reduces at once. */
  dataBytes: number;
  /** What the full-text index will add once it has taken the records it is behind on (0 where it follows at once: PostgreSQL). */
  indexBacklogBytes: number;
  /** Free space on the filesystem (infinite where the server does not own the disk: PostgreSQL). */
  freeBytes: number;
}

export interface RetentionStore {
  /** Gives the pages of deleted rows back (SQLite: to the filesystem; PostgreSQL: to new rows); false when it could not finish now. */
  compact(): boolean | Promise<boolean>;
  /** Empties the WAL (truncating checkpoint); false when it could not now. */
  truncateWal(): boolean | Promise<boolean>;
}

export interface RetentionIndex {
  /** Takes deleted records out of the full-text index and compacts it; resolves when done. */
  forget(ids: number[]): Promise<void>;
}

/**
 * Deletes log records older than maxAgeMs, then the oldest ones while the store's files on disk
 * are over maxBytes or the disk is under twice the free-space floor, giving the space back each
 * time (else deleted rows would only leave free pages inside the files). Runs on a timer and, so
 * that a fast stream never outruns the cap, after every `step` bytes of new records.
 */
export class LogRetention {
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private runAgain = false;
  private stopped = false;
  private storedAtLastRun = 0;
  private storedAtLastLook = 0;
  /** New record bytes between two runs triggered by writing. */
  readonly step: number;
  /**
   * Set while the files are past CAP_CEILING x the cap, the disk under FLOOR_MARGIN x the floor, or
   * the WAL past WAL_BACKLOG x its limit: logs arrive faster than retention makes room (or than
   * checkpoints empty the WAL), so log batches are answered "overloaded" (the agent keeps them and
   * sends them again).
   */
  refusal: StoreFailure | null = null;

  constructor(
    private readonly logs: LogsRepository,
    private readonly store: RetentionStore,
    private readonly searchIndex: RetentionIndex,
    private readonly measure: () => DiskFigures | Promise<DiskFigures>,
    private readonly limits: RetentionLimits,
    private readonly log: FastifyBaseLogger,
  ) {
    const floorStep = limits.minFreeBytes > 0 ? limits.minFreeBytes / 4 : Number.POSITIVE_INFINITY;
    this.step = Math.max(64 * 1024, Math.min(16 * 1024 * 1024, limits.maxBytes / 20, floorStep));
  }

  /** Started again after a stop when this replica leads again (cluster/leader-jobs.ts). */
  start(): void {
    this.stopped = false;
    this.storedAtLastRun = this.logs.storedBytes;
    this.timer = setInterval(() => this.schedule(), this.limits.intervalMs);
    this.timer.unref();
  }

  /**
   * Stopped (a follower, a deposed leader): no refusal is kept, as nothing here would make the room
   * that lifts it; the replica that leads keeps the store under the cap.
   */
  stop(): Promise<void> {
    this.stopped = true;
    this.refusal = null;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    this.runAgain = false;
    return this.running ?? Promise.resolve();
  }

  /** New records were stored: a look at the disk every quarter step, a run every step. Resolves once the look (if any) is done. */
  written(): Promise<void> {
    const stored = this.logs.storedBytes;
    let look = Promise.resolve();
    if (stored - this.storedAtLastLook >= this.step / 4) {
      look = this.lookAtRoom().catch((err: unknown) => this.log.warn({ err }, 'could not measure the log store: looking again at the next batches'));
    }
    if (stored - this.storedAtLastRun >= this.step) this.schedule();
    return look;
  }

  /** Sets or lifts the refusal; a WAL past twice its limit is truncated first (checkpoints in the worker cannot restart it under constant writes). */
  private async lookAtRoom(): Promise<void> {
    this.storedAtLastLook = this.logs.storedBytes;
    if (this.stopped) {
      this.refusal = null;
      return;
    }
    const { walLimitBytes } = this.limits;
    let figures = await this.measure();
    if (figures.walBytes > WAL_TRUNCATE * walLimitBytes && (await this.store.truncateWal())) figures = await this.measure();
    // On PostgreSQL other replicas write and the leader deletes: before refusing, the count of what
    // the table holds is read again (one scan, paid only when this replica's own count says full).
    if (this.isOver(figures) && (await this.logs.refreshStoredBytes())) {
      this.storedAtLastLook = this.logs.storedBytes;
      figures = await this.measure();
    }
    // Stopped while measuring: no refusal either.
    const over = !this.stopped && this.isOver(figures);
    if (over && !this.refusal) this.log.warn({ ...figures, ...this.limits }, 'logs arrive faster than retention makes room: log batches are refused until it catches up');
    this.refusal = over
      ? { code: ErrorCode.overloaded, message: 'the server is making room for logs (size cap, free-space floor): send again shortly', retryAfterMs: 1000 }
      : null;
    if (over) this.schedule();
  }

  private isOver(figures: DiskFigures): boolean {
    const { walBytes, freeBytes } = figures;
    const { maxBytes, minFreeBytes, walLimitBytes } = this.limits;
    return expectedData(figures) + walBytes > CAP_CEILING * maxBytes || freeBytes < FLOOR_MARGIN * minFreeBytes || walBytes > WAL_BACKLOG * walLimitBytes;
  }

  /** Runs soon; one run at a time (a request during a run makes one more after it). */
  schedule(): void {
    if (this.stopped) return;
    if (this.running) {
      this.runAgain = true;
      return;
    }
    this.running = this.run().then(({ deleted }) => deleted, (err: unknown) => {
      this.log.warn({ err, code: (err as { code?: string }).code }, 'log retention failed: trying again at the next run');
      return 0;
    }).then(async (deleted) => {
      // Refusing logs only helps while there are logs to delete; otherwise the next run looks again.
      if (this.refusal && deleted > 0) await this.lookAtRoom().catch(() => { this.refusal = null; });
      else this.refusal = null;
      this.running = undefined;
      if (this.runAgain) {
        this.runAgain = false;
        this.schedule();
      }
    });
  }

  async run(now = Date.now()): Promise<{ deleted: number }> {
    await this.logs.refreshStoredBytes();
    this.storedAtLastRun = this.logs.storedBytes;
    let deleted = await this.deleteByAge(now);
    for (let pass = 0; pass < MAX_ROOM_PASSES; pass++) {
      const { removed, givenBack } = await this.makeRoom();
      deleted += removed;
      if (removed === 0) break;
      // Another checkpoint was in the way: the files have not shrunk yet, measuring again now
      // would delete more than needed. The next run goes on, shortly.
      if (!givenBack) {
        this.retrySoon();
        break;
      }
    }
    const figures = await this.emptyWalOverCap();
    if (deleted) this.log.info({ deleted, usedBytes: figures.usedBytes, freeBytes: figures.freeBytes }, 'log retention removed old records');
    return { deleted };
  }

  /**
   * The data within the cap, the files over it: what is left is WAL (a passive checkpoint restarts
   * it at its size limit, it does not empty it; the index's WAL grows as it catches up). Emptied,
   * so a store at rest stays under the cap.
   */
  private async emptyWalOverCap(): Promise<DiskFigures> {
    const figures = await this.measure();
    if (figures.usedBytes <= this.limits.maxBytes || figures.walBytes === 0 || !(await this.store.truncateWal())) return figures;
    return this.measure();
  }

  private async deleteByAge(now: number): Promise<number> {
    let deleted = 0;
    for (let i = 0; i < MAX_CHUNKS_PER_RUN; i++) {
      const { ids } = await this.logs.deleteOlderThan(now - this.limits.maxAgeMs, CHUNK);
      if (ids.length === 0) break;
      deleted += ids.length;
      if (!(await this.giveBack(ids))) this.retrySoon();
    }
    return deleted;
  }

  /**
   * One round: how many bytes must go (over the cap: the data, counting what the index has yet
   * to take, down to 90 % of it; under twice the
   * floor: the shortfall, less the free pages inside the files that new rows fill first), that
   * share of the oldest records deleted in one transaction, and the room given back.
   */
  private async makeRoom(): Promise<{ removed: number; givenBack: boolean }> {
    const figures = await this.measure();
    const { usedBytes, walBytes, dataBytes, freeBytes, indexBacklogBytes } = figures;
    const { maxBytes, minFreeBytes } = this.limits;
    const overCap = usedBytes + indexBacklogBytes > maxBytes ? expectedData(figures) - CAP_LOW_WATER * maxBytes : 0;
    const reusable = Math.max(0, usedBytes - walBytes - dataBytes);
    const underFloor = freeBytes < FLOOR_MARGIN * minFreeBytes ? FLOOR_TARGET * minFreeBytes - freeBytes - reusable : 0;
    const excess = Math.max(overCap, underFloor);
    if (excess <= 0 || this.logs.storedBytes <= 0) return { removed: 0, givenBack: true };
    // Record bytes (message, fields) to the pages they take with their indexes and the search index.
    const onDisk = Math.max(1, expectedData(figures) / this.logs.storedBytes);
    const round = Math.min(excess, ROUND_SHARE_OF_CAP * maxBytes, Math.max(64 * 1024, ROUND_SHARE_OF_FREE * freeBytes));
    const { ids } = await this.logs.deleteOldestBytes(round / onDisk);
    return { removed: ids.length, givenBack: await this.giveBack(ids) };
  }

  private async giveBack(ids: number[]): Promise<boolean> {
    await this.searchIndex.forget(ids);
    return await this.store.compact();
  }

  private retrySoon(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.schedule(), 200);
    this.retryTimer.unref();
  }
}
