import { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../db/database.js';
import { closingOf, type Closing, type DemoRegistry } from '../live/demo-registry.js';
import type { LogsRepository, NewLogRecord, StoredLog } from '../repositories/logs-repository.js';
import type { FaultInjector } from './fault-injection.js';
import { storeFailure, type StoreFailure } from './store-failure.js';

export interface LogBatch {
  records: NewLogRecord[];
  /** Set for demo logs: the demo whose counters the stored lines add to. */
  demo?: { nodeId: string; token: string; name: string };
  /** Called once the batch is committed (then, and only then, may it be acknowledged). */
  stored: (records: StoredLog[], duplicates: number) => void;
  /** Called when the batch was not stored: nothing of it is kept, the sender must send it again. */
  failed: (failure: StoreFailure) => void;
}

export interface LogWriterEvents {
  records: [StoredLog[]];
  /** A write failed (full disk, I/O error): the storage monitor looks at the disk at once. */
  failure: [StoreFailure];
}

/** Past this many queued records, the writer flushes at once instead of waiting for the next tick. */
const FLUSH_RECORDS = 5000;

type Outcome = { ok: true; stored: StoredLog[]; duplicates: number; closing?: Closing | null } | { ok: false; failure: StoreFailure };

/**
 * Groups the log batches that arrive in the same event-loop turn into one transaction: fewer
 * fsyncs and much higher throughput than a transaction per batch. Each batch sits in its own
 * savepoint, so a batch that fails is rolled back and refused alone; every batch is answered
 * after the commit, stored or failed, never both.
 */
export class LogWriter extends EventEmitter<LogWriterEvents> {
  private queue: LogBatch[] = [];
  private queuedRecords = 0;
  private scheduled = false;
  private readonly storeBatch: (batch: LogBatch) => Outcome;
  recordsStored = 0;
  duplicatesIgnored = 0;
  batchesFailed = 0;
  /** What to answer instead of writing (the disk is full, retention is behind); null: write. Asked for every batch. */
  refusal: () => StoreFailure | null = () => null;

  constructor(
    private readonly db: Db,
    private readonly logs: LogsRepository,
    private readonly demos: DemoRegistry,
    private readonly faults: FaultInjector,
    private readonly log: FastifyBaseLogger,
  ) {
    super();
    // A transaction inside the flush's transaction is a savepoint (better-sqlite3).
    const inSavepoint = db.transaction((batch: LogBatch) => this.store(batch));
    this.storeBatch = (batch) => {
      try {
        return inSavepoint(batch);
      } catch (err) {
        return { ok: false, failure: this.failureOf(err) };
      }
    };
  }

  write(batch: LogBatch): void {
    if (this.dropped()) return;
    const refusal = this.refusal();
    if (refusal) return batch.failed(refusal);
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
    let outcomes: Outcome[];
    try {
      outcomes = this.db.transaction(() => batches.map(this.storeBatch))();
    } catch (err) {
      // The commit itself failed: nothing of any batch is kept.
      const failure = this.failureOf(err);
      outcomes = batches.map(() => ({ ok: false, failure }));
    }
    this.answer(batches, outcomes);
  }

  /** The test-only "log-drop" fault: the batch vanishes, unanswered. */
  private dropped(): boolean {
    try {
      this.faults.check('log-drop');
      return false;
    } catch {
      return true;
    }
  }

  private store(batch: LogBatch): Outcome {
    this.faults.check('log-store');
    // A library's closing record tells how the run ended; it is not one of the demo's lines.
    const closing = batch.demo ? batch.records.map(closingOf).findLast((c) => c !== null) ?? null : null;
    const records = closing ? batch.records.filter((r) => closingOf(r) === null) : batch.records;
    const stored = this.logs.insertNew(records);
    // Until this writer runs on the async store: the counters follow the synchronous commit of the lines (conversion step 1, logs).
    if (batch.demo && stored.length) this.demos.storeLineCounts(batch.demo, stored).catch((err: unknown) => this.log.error({ err }, 'could not add to the demo line counters'));
    return { ok: true, stored, duplicates: records.length - stored.length, closing };
  }

  /** After the commit: counters, live tail, and one answer per batch. */
  private answer(batches: LogBatch[], outcomes: Outcome[]): void {
    const all: StoredLog[] = [];
    let anyFailed = false;
    batches.forEach((batch, i) => {
      const outcome = outcomes[i]!;
      if (!outcome.ok) {
        anyFailed = true;
        this.batchesFailed++;
        return batch.failed(outcome.failure);
      }
      this.recordsStored += outcome.stored.length;
      this.duplicatesIgnored += outcome.duplicates;
      if (batch.demo && outcome.stored.length) this.demos.countLines(batch.demo, outcome.stored);
      if (batch.demo && outcome.closing) this.demos.recordClosing(batch.demo, outcome.closing);
      for (const record of outcome.stored) all.push(record);
      batch.stored(outcome.stored, outcome.duplicates);
    });
    // A rolled-back savepoint leaves the store's byte count ahead of what is on disk.
    if (anyFailed) this.logs.recountBytes();
    if (all.length) this.emit('records', all);
  }

  private failureOf(err: unknown): StoreFailure {
    const failure = storeFailure(err);
    this.log.error({ err, code: failure.code }, 'could not store log records: the agents will send them again');
    this.emit('failure', failure);
    return failure;
  }
}
