/** Past this many queued records, a lane writes at once instead of waiting for the next tick. */
const FLUSH_RECORDS = 5000;
/**
 * Records in one transaction, at most (a bigger batch goes alone). Lanes commit on their own, so
 * a transaction's first ids may commit after every id the other lanes took meanwhile: a bounded
 * transaction keeps that well within what a live follow takes late (live/log-tail.ts).
 */
export const MAX_GROUP_RECORDS = 5000;

/**
 * One serial writer of log batches: the batches that arrive while its transaction runs (or in the
 * same event-loop turn) go together in its next one, so its writes, and their answers, keep the
 * order the batches came in.
 */
export class LogWriteLane<Batch extends { records: readonly unknown[] }> {
  private queue: Batch[] = [];
  private queuedRecords = 0;
  private scheduled = false;
  private writing: Promise<void> | undefined;

  /** `writeGroup` stores one group of batches in one transaction and answers each; it never rejects. */
  constructor(private readonly writeGroup: (batches: Batch[]) => Promise<void>) {}

  push(batch: Batch): void {
    this.queue.push(batch);
    this.queuedRecords += batch.records.length;
    if (this.queuedRecords >= FLUSH_RECORDS) {
      void this.flush();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  /** Writes what is queued; resolves once every batch queued before the call is answered. One write at a time. */
  flush(): Promise<void> {
    this.scheduled = false;
    if (!this.writing) {
      if (this.queue.length === 0) return Promise.resolve();
      this.writing = this.writeQueued().finally(() => { this.writing = undefined; });
    }
    return this.writing;
  }

  private async writeQueued(): Promise<void> {
    while (this.queue.length) await this.writeGroup(this.nextGroup());
  }

  /** The oldest queued batches, up to MAX_GROUP_RECORDS records (always at least one batch). */
  private nextGroup(): Batch[] {
    let count = 0;
    let records = 0;
    while (count < this.queue.length && (count === 0 || records + this.queue[count]!.records.length <= MAX_GROUP_RECORDS)) {
      records += this.queue[count]!.records.length;
      count++;
    }
    this.queuedRecords -= records;
    return this.queue.splice(0, count);
  }
}
