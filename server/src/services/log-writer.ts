import { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import type { Sql } from '../db/sql.js';
import { closingOf, type Closing, type DemoRegistry } from '../live/demo-registry.js';
import type { LogsRepository, NewLogRecord, StoredLog } from '../repositories/logs-repository.js';
import type { FaultInjector } from './fault-injection.js';
import { LogWriteLane } from './log-write-lane.js';
import { storeFailure, type StoreFailure } from './store-failure.js';

export interface LogBatch {
  /** The node that sent it: its batches keep one write lane, so they are stored and answered in order. */
  nodeId: string;
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

type Outcome = { ok: true; stored: StoredLog[]; duplicates: number; closing?: Closing | null } | { ok: false; failure: StoreFailure };

/** What the writer does with a demo's stored lines: its counters in the database (in the write's transaction), then in memory. */
export type LineCounter = Pick<DemoRegistry, 'countLines' | 'recordClosing'> & {
  storeLineCounts(...args: Parameters<DemoRegistry['storeLineCounts']>): void | Promise<void>;
};

/**
 * Log transactions at once, at most (PostgreSQL; SQLite has one connection: one writer). Several
 * keep the database busy while this process prepares the next groups and waits for commits: one
 * writer left both cores idle half of the time (bench/log-pipeline --store postgres; Sizing in
 * docs/scale-out.md). Half the pool at most: the other half stays for retention, requests and the
 * registries.
 */
const MAX_LANES = 4;
const lanesFor = (sql: Sql) => Math.min(MAX_LANES, Math.max(1, Math.floor(sql.connections / 2)));

/**
 * Groups the log batches that arrive while the previous write runs (or in the same event-loop
 * turn) into one transaction: fewer fsyncs and round trips, much higher throughput than a
 * transaction per batch. Each batch sits in its own savepoint, so a batch that fails is rolled
 * back and refused alone; every batch is answered from the commit callback, stored or failed,
 * never both: a logs.ack always means committed, so a batch sent again is stored exactly once.
 *
 * On PostgreSQL writes go in lanes (log-write-lane.ts), each one transaction at a time, and a
 * node's batches always in the same lane: a source's batches are stored and answered in the order
 * they came, and two transactions of this process never update one demo's counters (no lock
 * waits, no deadlock). Lanes commit on their own, so ids may commit out of order between nodes,
 * as between replicas (live/followed-ids.ts).
 */
export class LogWriter extends EventEmitter<LogWriterEvents> {
  private readonly lanes: LogWriteLane<LogBatch>[];
  recordsStored = 0;
  duplicatesIgnored = 0;
  batchesFailed = 0;
  /** What to answer instead of writing (the disk is full, retention is behind); null: write. Asked for every batch. */
  refusal: () => StoreFailure | null = () => null;

  constructor(
    private readonly sql: Sql,
    private readonly logs: LogsRepository,
    private readonly demos: LineCounter,
    private readonly faults: FaultInjector,
    private readonly log: FastifyBaseLogger,
  ) {
    super();
    this.lanes = Array.from({ length: lanesFor(sql) }, () => new LogWriteLane<LogBatch>((batches) => this.writeGroup(batches)));
  }

  write(batch: LogBatch): void {
    if (this.dropped()) return;
    const refusal = this.refusal();
    if (refusal) return batch.failed(refusal);
    this.laneOf(batch).push(batch);
  }

  /** Writes what is queued; resolves once every batch queued before the call is answered. */
  async flush(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.flush()));
  }

  /** A node's lane: the same for all its batches. */
  private laneOf(batch: LogBatch): LogWriteLane<LogBatch> {
    if (this.lanes.length === 1) return this.lanes[0]!;
    let hash = 0;
    for (let i = 0; i < batch.nodeId.length; i++) hash = (hash * 31 + batch.nodeId.charCodeAt(i)) >>> 0;
    return this.lanes[hash % this.lanes.length]!;
  }

  /** One group in one transaction, a savepoint per batch. Never rejects: every batch gets an answer. */
  private async writeGroup(batches: LogBatch[]): Promise<void> {
    try {
      await this.sql.transaction(async () => {
        const outcomes: Outcome[] = [];
        for (const batch of batches) outcomes.push(await this.storeInSavepoint(batch));
        // A throw in it is reported by the Sql and never fails the committed transaction (never a nack after an ack).
        this.sql.afterCommit(() => this.answer(batches, outcomes));
      });
    } catch (err) {
      // The commit itself failed: nothing of any batch is kept.
      const failure = this.failureOf(err);
      this.answer(batches, batches.map(() => ({ ok: false, failure })));
    }
  }

  private async storeInSavepoint(batch: LogBatch): Promise<Outcome> {
    try {
      return await this.sql.transaction(() => this.store(batch));
    } catch (err) {
      return { ok: false, failure: this.failureOf(err) };
    }
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

  private async store(batch: LogBatch): Promise<Outcome> {
    this.faults.check('log-store');
    // A library's closing record tells how the run ended; it is not one of the demo's lines.
    const closing = batch.demo ? batch.records.map(closingOf).findLast((c) => c !== null) ?? null : null;
    const records = closing ? batch.records.filter((r) => closingOf(r) === null) : batch.records;
    const stored = await this.logs.insertNew(records);
    if (batch.demo && stored.length) await this.demos.storeLineCounts(batch.demo, stored);
    return { ok: true, stored, duplicates: records.length - stored.length, closing };
  }

  /** After the commit: counters, live tail, and one answer per batch. */
  private answer(batches: LogBatch[], outcomes: Outcome[]): void {
    const all: StoredLog[] = [];
    let anyFailed = false;
    batches.forEach((batch, i) => {
      const outcome = outcomes[i]!;
      // Each batch is answered whatever happens to the others: a throw here must not leave the
      // later ones waiting for an ack that never comes (their records are committed).
      try {
        if (!outcome.ok) {
          anyFailed = true;
          this.batchesFailed++;
          return batch.failed(outcome.failure);
        }
        this.recordsStored += outcome.stored.length;
        this.duplicatesIgnored += outcome.duplicates;
        for (const record of outcome.stored) all.push(record);
        batch.stored(outcome.stored, outcome.duplicates);
        if (batch.demo && outcome.stored.length) this.demos.countLines(batch.demo, outcome.stored);
        if (batch.demo && outcome.closing) this.demos.recordClosing(batch.demo, outcome.closing);
      } catch (err) {
        this.log.error({ err }, 'answering a stored log batch failed (the other batches are answered)');
      }
    });
    // A rolled-back savepoint leaves the store's byte count ahead of what is on disk. (With several
    // lanes the recount misses what the others have not committed yet: an estimate until the next
    // retention run, which counts again on PostgreSQL.)
    if (anyFailed) this.logs.recountBytes().catch((err: unknown) => this.log.warn({ err }, 'could not count the stored log bytes again'));
    if (all.length) this.emit('records', all);
  }

  private failureOf(err: unknown): StoreFailure {
    const failure = storeFailure(err);
    this.log.error({ err, code: failure.code }, 'could not store log records: the agents will send them again');
    this.emit('failure', failure);
    return failure;
  }
}
