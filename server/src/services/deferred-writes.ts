import type { FastifyBaseLogger } from 'fastify';
import { passingStoreFailure, type StoreFailure } from './store-failure.js';

/** A write that fails again and again (a periodic flush on a full disk) is logged this often at most. */
const REPORT_EVERY_MS = 60_000;

/** Past this many waiting writes, the oldest is given up (and logged by key) so memory stays bounded. */
const MAX_WAITING = 100_000;

/** A write to the database: synchronous (better-sqlite3 directly) or through the async `Sql`. */
export type Write = () => unknown;

/** How a store runs a write that may wait for the disk (DeferredWrites), or not (writeNow). */
export interface WriteScheduler {
  /**
   * An async write (`Sql`): resolves true once stored, false while it waits; rejects only for an
   * error that is not the disk's (a bug, a constraint). Writes of one key reach the database in order.
   */
  run(key: string, write: () => Promise<unknown>): Promise<boolean>;
  /** A synchronous write: runs now; false when it waits; throws an error that is not the disk's. */
  run(key: string, write: () => void): boolean;
  /** A write nobody awaits (live state, best-effort records): a failure that is not the disk's is logged, never thrown. */
  background(key: string, write: Write): void;
  uniqueKey(prefix: string): string;
  report(err: unknown, what: string): void;
}

/** Writes at once and lets a failure through: for tools that run beside the server (reset-admin) and tests. */
class WriteNow implements WriteScheduler {
  run(key: string, write: () => Promise<unknown>): Promise<boolean>;
  run(key: string, write: () => void): boolean;
  run(_key: string, write: Write): boolean | Promise<boolean> {
    const result = write();
    return result instanceof Promise ? result.then(() => true) : true;
  }

  background(_key: string, write: Write): void {
    void this.run(_key, write as () => Promise<unknown>);
  }

  uniqueKey(prefix: string): string {
    return prefix;
  }

  report(err: unknown): void {
    throw err;
  }
}

export const writeNow: WriteScheduler = new WriteNow();

/**
 * Writes that may wait for the disk. A write the disk refuses (full, read-only, busy) is kept in
 * memory, the latest one per key, and run again in order once storage recovers (or at the next
 * retry tick), so what the server shows (a node's status, a demo, a command's end, an audit
 * entry, a session) reaches the database later instead of being lost or crashing the server.
 * Any other error (a bug, a constraint) is the caller's, as without this.
 */
export class DeferredWrites implements WriteScheduler {
  private readonly waiting = new Map<string, Write>();
  /** The last async write of each key still running: the next one of the key waits for it. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Set while waiting writes are retried across an async write. */
  private draining: Promise<void> | undefined;
  private drainActive = false;
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
   * waits. A later write with the same key replaces a waiting one. A synchronous write answers
   * synchronously (as before the async store); an async one answers with a promise.
   */
  run(key: string, write: () => Promise<unknown>): Promise<boolean>;
  run(key: string, write: () => void): boolean;
  run(key: string, write: Write): boolean | Promise<boolean> {
    const previous = this.inFlight.get(key);
    if (previous) return this.track(key, previous.then(() => this.runAsync(key, write)));
    if (this.waiting.size === 0 && !this.draining) {
      let result: unknown;
      try {
        result = write();
      } catch (err) {
        this.keep(key, write, err);
        return false;
      }
      if (!(result instanceof Promise)) return true;
      return this.track(key, result.then(() => true, (err: unknown) => {
        this.keep(key, write, err);
        return false;
      }));
    }
    this.waiting.delete(key);
    this.waiting.set(key, write);
    const drained = this.retry();
    return this.draining ? drained.then(() => !this.waiting.has(key)) : !this.waiting.has(key);
  }

  background(key: string, write: Write): void {
    const failed = (err: unknown) => this.log.error({ err, key }, 'a write failed: given up');
    try {
      const result = this.run(key, write as () => Promise<unknown>);
      if (result instanceof Promise) result.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  /** Resolves once every asynchronous write started so far has ended (stored, or waiting). */
  async settled(): Promise<void> {
    while (this.inFlight.size || this.draining) await Promise.all([...this.inFlight.values(), this.draining]);
  }

  /** The async path of run, once the key's previous write has settled. */
  private async runAsync(key: string, write: Write): Promise<boolean> {
    if (this.waiting.size === 0 && !this.draining) {
      try {
        await write();
        return true;
      } catch (err) {
        this.keep(key, write, err);
        return false;
      }
    }
    this.waiting.delete(key);
    this.waiting.set(key, write);
    await this.retry();
    return !this.waiting.has(key);
  }

  /** Keeps the writes of one key in order: the next waits until this one settled. */
  private track(key: string, attempt: Promise<boolean>): Promise<boolean> {
    const settled = attempt.then(() => undefined, () => undefined);
    this.inFlight.set(key, settled);
    void settled.then(() => {
      if (this.inFlight.get(key) === settled) this.inFlight.delete(key);
    });
    return attempt;
  }

  /**
   * Runs the waiting writes in order; stops at the first the disk still refuses. Synchronous
   * writes alone finish before it returns; an async one makes the rest wait for it (the promise).
   */
  retry(): Promise<void> {
    if (this.draining) return this.draining.then(() => (this.waiting.size ? this.retry() : undefined));
    const drained = this.drain();
    if (this.drainActive) this.draining = drained;
    return drained;
  }

  private async drain(): Promise<void> {
    this.drainActive = true;
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
        // A newer write of the key, made while this one ran, waits at the end: keep it.
        if (this.waiting.get(key) === write) this.waiting.delete(key);
      }
      if (before) this.log.info({ writes: before }, 'the writes that waited for the disk are stored');
    } finally {
      this.drainActive = false;
      this.draining = undefined;
    }
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
    await Promise.all(this.inFlight.values());
    if (this.waiting.size) await this.retry();
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
