import type { FastifyBaseLogger } from 'fastify';
import { passingStoreFailure, type StoreFailure } from './store-failure.js';

/** A write that fails again and again (a periodic flush on a full disk) is logged this often at most. */
const REPORT_EVERY_MS = 60_000;

/** Past this many waiting writes, the oldest is given up (and logged by key) so memory stays bounded. */
const MAX_WAITING = 100_000;

/**
 * A write: synchronous, or asynchronous (the `Sql` layer). An async write that the disk refuses
 * waits like a sync one; callers keep the order of writes of one key by awaiting (or chaining) them.
 */
export type Write = () => unknown;

const isPromise = (value: unknown): value is Promise<unknown> => value instanceof Promise;

/** How a store runs a write that may wait for the disk (DeferredWrites), or not (writeNow). */
export interface WriteScheduler {
  run(key: string, write: Write): boolean;
  uniqueKey(prefix: string): string;
  report(err: unknown, what: string): void;
}

/** Writes at once and lets a failure through: for tools that run beside the server (reset-admin) and tests. */
export const writeNow: WriteScheduler = {
  run: (_key, write) => {
    const result = write();
    // An async write's failure cannot be thrown to the caller any more: it is at least not unhandled.
    if (isPromise(result)) result.catch((err: unknown) => { process.emitWarning(`a write failed: ${(err as Error).message}`); });
    return true;
  },
  uniqueKey: (prefix) => prefix,
  report: (err) => {
    throw err;
  },
};

/**
 * Writes that may wait for the disk. A write the disk refuses (full, read-only, busy) is kept in
 * memory, the latest one per key, and run again in order once storage recovers (or at the next
 * retry tick), so what the server shows (a node's status, a demo, a command's end, an audit
 * entry, a session) reaches the database later instead of being lost or crashing the server.
 * Any other error (a bug, a constraint) is the caller's, as without this.
 */
export class DeferredWrites implements WriteScheduler {
  private readonly waiting = new Map<string, Write>();
  private retrying = false;
  private timer: NodeJS.Timeout | undefined;
  private sequence = 0;
  private readonly reportedAt = new Map<string, number>();
  /** Writes given up because too many were waiting. */
  dropped = 0;

  constructor(
    private readonly onFailure: (failure: StoreFailure) => void,
    private readonly log: FastifyBaseLogger,
    private readonly maxWaiting = MAX_WAITING,
  ) {}

  get size(): number {
    return this.waiting.size;
  }

  /** A key no other write shares (for entries that are appended, never replaced). */
  uniqueKey(prefix: string): string {
    return `${prefix}:${++this.sequence}`;
  }

  /**
   * Runs the write now, after any that wait (order is kept); true when it is stored, false when it
   * waits. A later write with the same key replaces a waiting one.
   */
  run(key: string, write: Write): boolean {
    if (this.waiting.size === 0) {
      try {
        const result = write();
        if (isPromise(result)) result.catch((err: unknown) => this.failedLater(key, write, err));
        return true;
      } catch (err) {
        this.keep(key, write, err);
        return false;
      }
    }
    this.waiting.delete(key);
    this.waiting.set(key, write);
    this.retry();
    return !this.waiting.has(key);
  }

  /**
   * Runs the waiting writes in order; stops at the first the disk still refuses. Synchronous
   * while the writes are; an async write is awaited before the next runs (one retry at a time).
   */
  retry(): void {
    if (this.retrying) return;
    this.retrying = true;
    void this.retryWaiting();
  }

  private async retryWaiting(): Promise<void> {
    try {
      const before = this.waiting.size;
      for (const [key, write] of this.waiting) {
        try {
          const result = write();
          if (isPromise(result)) await result;
        } catch (err) {
          const failure = passingStoreFailure(err);
          if (failure) {
            this.onFailure(failure);
            return;
          }
          this.log.error({ err, key }, 'a write that waited for the disk failed: given up');
        }
        // A newer write of the key that came meanwhile still waits.
        if (this.waiting.get(key) === write) this.waiting.delete(key);
      }
      if (before) this.log.info({ writes: before }, 'the writes that waited for the disk are stored');
    } finally {
      this.retrying = false;
    }
  }

  /** An async write run at once failed: it waits like a sync one (unless a newer one of its key already does). */
  private failedLater(key: string, write: Write, err: unknown): void {
    if (!passingStoreFailure(err)) {
      this.log.error({ err, key }, 'a write failed');
      return;
    }
    if (!this.waiting.has(key)) this.keep(key, write, err);
  }

  /** A write outside this queue failed (e.g. a periodic flush that tries again by itself): report it. */
  report(err: unknown, what: string, now = Date.now()): void {
    const failure = passingStoreFailure(err);
    if (failure) this.onFailure(failure);
    if (now - (this.reportedAt.get(what) ?? Number.NEGATIVE_INFINITY) < REPORT_EVERY_MS) return;
    this.reportedAt.set(what, now);
    if (failure) this.log.warn({ code: (err as { code?: string }).code }, `${what}: ${failure.message}, trying again later`);
    else this.log.error({ err }, `${what} failed`);
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => { if (this.waiting.size) this.retry(); }, intervalMs);
    this.timer.unref();
  }

  /** A last try; what still waits is lost with the process, and said so. */
  stop(): void {
    clearInterval(this.timer);
    if (this.waiting.size) this.retry();
    if (this.waiting.size) this.log.error({ writes: this.waiting.size, keys: [...this.waiting.keys()].slice(0, 20) }, 'the disk refused these writes until shutdown: they are lost');
  }

  private keep(key: string, write: Write, err: unknown): void {
    const failure = passingStoreFailure(err);
    if (!failure) throw err;
    if (this.waiting.size === 0) this.log.warn({ code: (err as { code?: string }).code, key }, `${failure.message}: writes wait in memory until it can`);
    if (this.waiting.size >= this.maxWaiting) {
      const [oldest] = this.waiting.keys();
      this.waiting.delete(oldest!);
      this.dropped++;
      this.log.error({ key: oldest }, `more than ${this.maxWaiting} writes wait for the disk: the oldest is given up`);
    }
    this.waiting.set(key, write);
    this.onFailure(failure);
  }
}
