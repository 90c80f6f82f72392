import type { LiveMessage } from '@dvic/protocol';

export interface PublishQueueLimits {
  /** How long the first event of a batch waits for others before the batch goes. */
  windowMs: number;
  /** A batch goes at once when it reaches this many bytes of JSON (NATS refuses over max_payload, 1 MiB by default). */
  batchBytes: number;
  /** At most this many events and bytes wait (NATS away): the oldest are dropped beyond. */
  maxEvents: number;
  maxBytes: number;
}

/** Sends one batch: the events' JSON texts, in order; resolves when the bus stored it. */
export type SendBatch = (messages: string[]) => Promise<void>;

/** Why an event never went: dropped from a full queue (the bus away or slower than the events). */
export class QueueFullError extends Error {
  constructor(limits: PublishQueueLimits) {
    super(`dropped: over ${limits.maxEvents} events or ${limits.maxBytes} bytes waiting for the bus`);
  }
}

interface Entry {
  json: string;
  bytes: number;
  /** Set for a newest-state event: a newer one with the same key replaces it. */
  key: string | null;
  gone: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Live events on their way to the bus, sent as few messages: what is queued over a window (or up
 * to a size) goes as one batch, in order, one batch at a time (what comes while a batch is sent
 * goes in the next). A newest-state event (newestStateKey) replaces the one of the same key still
 * queued. The queue is bounded: when full, the oldest newest-state event goes first, then the
 * oldest of any kind. Each event's promise settles with its batch (a replaced one resolves: its
 * newer one carries the state).
 */
export class PublishQueue {
  private entries: Entry[] = [];
  /** Queued newest-state events by key, oldest first (a replaced key moves to the end). */
  private readonly newest = new Map<string, Entry>();
  private count = 0;
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly limits: PublishQueueLimits, private readonly send: SendBatch) {}

  push(message: LiveMessage): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('the live-event fan-out stopped'));
    return new Promise((resolve, reject) => {
      const json = JSON.stringify(message);
      const entry: Entry = { json, bytes: Buffer.byteLength(json), key: newestStateKey(message), gone: false, resolve, reject };
      if (entry.key) this.replaceNewest(entry.key, entry);
      this.entries.push(entry);
      this.count++;
      this.bytes += entry.bytes;
      this.bound();
      this.schedule();
    });
  }

  /**
   * Sends what is queued now instead of at the end of its window; resolves once the queue is empty
   * (or after timeoutMs). A replica stopping flushes first: its last events (its agents going
   * offline, a status another replica replays) must not die with it.
   */
  async flush(timeoutMs: number): Promise<void> {
    if (this.stopped || !this.count) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const drained = this.sending ? this.idle() : this.drain();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((r) => { timer = setTimeout(r, timeoutMs); })]);
    clearTimeout(timer);
  }

  /** Resolves when the batch on its way (and what follows it) is sent. */
  private idle(): Promise<void> {
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Events still queued are rejected: nothing sends them any more. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    const err = new Error('the live-event fan-out stopped');
    for (const entry of this.take(Infinity)) entry.reject(err);
  }

  private replaceNewest(key: string, entry: Entry): void {
    const older = this.newest.get(key);
    if (older) {
      this.remove(older);
      older.resolve();
      this.newest.delete(key);
    }
    this.newest.set(key, entry);
  }

  private bound(): void {
    while (this.count > this.limits.maxEvents || this.bytes > this.limits.maxBytes) {
      const oldest = this.newest.values().next().value ?? this.entries.find((entry) => !entry.gone);
      if (!oldest) return;
      this.remove(oldest);
      oldest.reject(new QueueFullError(this.limits));
    }
  }

  private remove(entry: Entry): void {
    entry.gone = true;
    this.count--;
    this.bytes -= entry.bytes;
    if (entry.key && this.newest.get(entry.key) === entry) this.newest.delete(entry.key);
    entry.json = '';
    // Gone entries at the front are forgotten now (dropping the oldest finds the next quickly);
    // the ones further in (hardware replaced or dropped while NATS is away) once they outnumber
    // the live ones, so that the queue's memory stays within its bounds.
    while (this.entries.length && this.entries[0]!.gone) this.entries.shift();
    if (this.entries.length > 2 * this.count + 1024) this.entries = this.entries.filter((e) => !e.gone);
  }

  private schedule(): void {
    if (this.sending) return; // the batch on its way is followed by what came meanwhile
    if (this.bytes >= this.limits.batchBytes) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.drain();
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        void this.drain();
      }, this.limits.windowMs);
    }
  }

  private async drain(): Promise<void> {
    this.sending = true;
    while (this.count && !this.stopped) {
      const batch = this.take(this.limits.batchBytes);
      try {
        await this.send(batch.map((entry) => entry.json));
        for (const entry of batch) entry.resolve();
      } catch (err) {
        for (const entry of batch) entry.reject(err as Error);
      }
    }
    this.sending = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** The oldest events up to `maxBytes` (at least one), out of the queue. */
  private take(maxBytes: number): Entry[] {
    const batch: Entry[] = [];
    let bytes = 0;
    let index = 0;
    for (; index < this.entries.length; index++) {
      const entry = this.entries[index]!;
      if (entry.gone) continue;
      if (batch.length && bytes + entry.bytes > maxBytes) break;
      batch.push(entry);
      bytes += entry.bytes;
      if (entry.key && this.newest.get(entry.key) === entry) this.newest.delete(entry.key);
    }
    this.entries = this.entries.slice(index);
    this.count -= batch.length;
    this.bytes -= bytes;
    return batch;
  }
}

/**
 * The key of an event that only carries the newest state of something (a later one makes it
 * useless); null for the others. Only `node.hardware` is: a node's latest metrics. Not logs,
 * commands, alerts, status transitions (each one is news), nor `devices.seen` (each carries its
 * own set of devices) or `node.updated`/`node.demos` (changes, applied in turn by the receivers).
 */
export function newestStateKey(message: LiveMessage): string | null {
  return message.type === 'node.hardware' ? `node.hardware:${message.data.node_id}` : null;
}
