import { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../db/database.js';
import type { DemoRegistry } from '../live/demo-registry.js';
import { ERROR_LEVEL, type LogsRepository, type NewLogRecord, type StoredLog } from '../repositories/logs-repository.js';

export interface LogBatch {
  records: NewLogRecord[];
  /** Set for demo logs: the demo whose counters the stored lines add to. */
  demo?: { nodeId: string; token: string; name: string };
  /** Called once the batch is committed (then, and only then, may it be acknowledged). */
  committed: (stored: StoredLog[]) => void;
}

export interface LogWriterEvents {
  records: [StoredLog[]];
}

/** Past this many queued records, the writer flushes at once instead of waiting for the next tick. */
const FLUSH_RECORDS = 5000;

/**
 * Groups the log batches that arrive in the same event-loop turn into one transaction: fewer
 * fsyncs and much higher throughput than a transaction per batch, still acked only after commit.
 */
export class LogWriter extends EventEmitter<LogWriterEvents> {
  private queue: LogBatch[] = [];
  private queuedRecords = 0;
  private scheduled = false;
  /** Approximate bytes stored, kept for the size-based retention. */
  totalBytes: number;
  recordsStored = 0;
  duplicatesIgnored = 0;

  constructor(private readonly db: Db, private readonly logs: LogsRepository, private readonly demos: DemoRegistry, private readonly log: FastifyBaseLogger) {
    super();
    this.totalBytes = logs.totalBytes();
  }

  write(batch: LogBatch): void {
    this.queue.push(batch);
    this.queuedRecords += batch.records.length;
    if (this.queuedRecords >= FLUSH_RECORDS) return this.flush();
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    const batches = this.queue;
    this.queue = [];
    this.queuedRecords = 0;
    if (batches.length === 0) return;
    let results: StoredLog[][];
    try {
      results = this.db.transaction(() => batches.map((batch) => this.store(batch)))();
    } catch (err) {
      // Nothing is acknowledged: the agents keep the lines and send them again.
      this.log.error({ err, batches: batches.length }, 'could not store log records');
      return;
    }
    const all: StoredLog[] = [];
    batches.forEach((batch, i) => {
      all.push(...results[i]!);
      batch.committed(results[i]!);
    });
    if (all.length) this.emit('records', all);
  }

  private store(batch: LogBatch): StoredLog[] {
    const { stored, bytes } = this.logs.insertNew(batch.records);
    this.totalBytes += bytes;
    this.recordsStored += stored.length;
    this.duplicatesIgnored += batch.records.length - stored.length;
    if (batch.demo && stored.length) {
      const { nodeId, token, name } = batch.demo;
      this.demos.ensure(nodeId, token, name);
      const errors = stored.filter((r) => r.level === 'ERROR' || r.level === 'FATAL').length;
      this.demos.countLines(nodeId, token, stored.length, errors, Math.max(...stored.map((r) => r.ts)));
    }
    return stored;
  }
}

export { ERROR_LEVEL };
