import type { FastifyBaseLogger } from 'fastify';
import { passingStoreFailure, type StoreFailure } from './store-failure.js';

/** A write that fails again and again (a periodic flush on a full disk) is logged this often at most. */
const REPORT_EVERY_MS = 60_000;

/** Past this many waiting writes, the oldest is given up (and logged by key) so memory stays bounded. */
const MAX_WAITING = 100_000;

/** A write: synchronous (better-sqlite3 called directly) or asynchronous (through `Sql`). */
export type Write = () => unknown;

/** How a store runs a write that may wait for the disk (DeferredWrites), or not (writeNow). */
export interface WriteScheduler {
  run(key: string, write: Write): boolean;
  uniqueKey(prefix: string): string;
  report(err: unknown, what: string): void;
}

/**
 * Writes at once and lets a failure through: for tools that run beside the server (reset-admin) and tests.
 * An asynchronous write's failure is an unhandled rejection there: loud, as a failure should be in a test.
 */
export const writeNow: WriteScheduler = {
  run: (_key, write) => {
    void write();
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
  /** Asynchronous writes on their way, per key: a later write of the same key starts after it (order kept). */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** The drain under way; cleared synchronously when it ends, so a drain of synchronous writes leaves nothing behind. */
  private retrying: Promise<void> | undefined;
  private draining = false;
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
   * Runs the write now, after any that wait (order is kept); true when it is stored (or, when
   * asynchronous, on its way), false when it waits. A later write with the same key replaces a
   * waiting one. An asynchronous write the disk refuses joins the waiting ones when it fails; any
   * other failure of one is logged (nobody awaits it).
   */
  run(key: string, write: Write): boolean {
    if (this.waiting.size === 0) {
      const previous = this.inFlight.get(key);
      if (previous) {
        this.follow(key, previous.then(() => this.attemptLater(key, write)));
        return true;
      }
      let result: unknown;
      try {
        result = write();
      } catch (err) {
        this.keep(key, write, err);
        return false;
      }
      if (result instanceof Promise) this.follow(key, result.then(() => undefined, (err: unknown) => this.keepLater(key, write, err)));
      return true;
    }
    this.waiting.delete(key);
    this.waiting.set(key, write);
    void this.retry();
    return !this.waiting.has(key);
  }

  /** Resolves once every asynchronous write started so far has ended (stored, or waiting). */
  async settled(): Promise<void> {
    while (this.inFlight.size || this.retrying) await Promise.all([...this.inFlight.values(), this.retrying]);
  }

  /** Runs the waiting writes in order; stops at the first the disk still refuses. */
  retry(): Promise<void> {
    if (this.retrying) return this.retrying;
    const drain = this.drain();
    // A drain of synchronous writes has ended already: nothing to remember.
    if (this.draining) this.retrying = drain;
    return drain;
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
    this.timer = setInterval(() => { if (this.waiting.size) void this.retry(); }, intervalMs);
    this.timer.unref();
  }

  /** A last try; what still waits is lost with the process, and said so. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.settled();
    if (this.waiting.size) await this.retry();
    if (this.waiting.size) this.log.error({ writes: this.waiting.size, keys: [...this.waiting.keys()].slice(0, 20) }, 'the disk refused these writes until shutdown: they are lost');
  }

  /**
   * The waiting writes, oldest first. Synchronous writes run synchronously (as callers of a
   * synchronous store expect); an asynchronous one is awaited before the next.
   */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      const before = this.waiting.size;
      for (const [key, write] of this.waiting) {
        try {
          const result = write();
          if (result instanceof Promise) await result;
        } catch (err) {
          const failure = passingStoreFailure(err);
          if (failure) {
            this.onFailure(failure);
            return;
          }
          this.log.error({ err, key }, 'a write that waited for the disk failed: given up');
        }
        // A newer write of the key may have replaced this one while it ran.
        if (this.waiting.get(key) === write) this.waiting.delete(key);
      }
      if (before) this.log.info({ writes: before }, 'the writes that waited for the disk are stored');
    } finally {
      // Synchronously when no write was asynchronous: the next retry() starts afresh at once.
      this.draining = false;
      this.retrying = undefined;
    }
  }

  private follow(key: string, done: Promise<void>): void {
    this.inFlight.set(key, done);
    void done.then(() => { if (this.inFlight.get(key) === done) this.inFlight.delete(key); });
  }

  /** A write that followed an earlier one of its key: it waits with the others if the disk refuses writes by now. */
  private async attemptLater(key: string, write: Write): Promise<void> {
    if (this.waiting.size) {
      if (!this.waiting.has(key)) this.waiting.set(key, write);
      return;
    }
    try {
      await write();
    } catch (err) {
      this.keepLater(key, write, err);
    }
  }

  /** An asynchronous write failed: kept when the disk refused it (unless a newer one of its key waits), else logged. */
  private keepLater(key: string, write: Write, err: unknown): void {
    if (!passingStoreFailure(err)) {
      this.log.error({ err, key }, 'a write failed: given up');
      return;
    }
    if (this.waiting.has(key)) return;
    this.keep(key, write, err);
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
