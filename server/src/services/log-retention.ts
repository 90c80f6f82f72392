import type { FastifyBaseLogger } from 'fastify';
import type { LogSearchIndex } from '../db/log-search-index.js';
import type { LogsRepository } from '../repositories/logs-repository.js';

const CHUNK = 10_000;
const MAX_CHUNKS_PER_RUN = 100;
// Size-based deletion goes in smaller steps so it stops close to the limit.
const SIZE_CHUNK = 1000;

/**
 * Deletes log records older than maxAgeMs, then the oldest ones while the store is over maxBytes.
 * Works in chunks so one run never blocks the server for long.
 */
export class LogRetention {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logs: LogsRepository,
    private readonly searchIndex: Pick<LogSearchIndex, 'forget'>,
    private readonly limits: { maxAgeMs: number; maxBytes: number; intervalMs: number },
    private readonly log: FastifyBaseLogger,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.run(), this.limits.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  run(now = Date.now()): { deleted: number } {
    let deleted = 0;
    for (let i = 0; i < MAX_CHUNKS_PER_RUN; i++) {
      const byAge = this.logs.deleteOlderThan(now - this.limits.maxAgeMs, CHUNK);
      const bySize = byAge.ids.length === 0 && this.logs.storedBytes > this.limits.maxBytes ? this.logs.deleteOldest(SIZE_CHUNK) : { ids: [], bytes: 0 };
      const removed = [...byAge.ids, ...bySize.ids];
      this.searchIndex.forget(removed);
      deleted += removed.length;
      if (removed.length === 0) break;
    }
    if (deleted) this.log.info({ deleted, bytes: this.logs.storedBytes }, 'log retention removed old records');
    return { deleted };
  }
}
