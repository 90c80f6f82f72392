import type { WriteScheduler } from './deferred-writes.js';

/** A write that stores the thing as it is when the write runs (its current view, say). */
type StoreCurrent = () => Promise<unknown>;

interface Queue {
  /** The write asked for while one ran: it runs next (only the latest one: it stores the current state anyway). */
  next: StoreCurrent | undefined;
  done: Promise<void>;
}

/**
 * Keeps the stored state of things that change often (a rollout's progress) following memory:
 * one write at a time per key, in the order asked, the writes asked for meanwhile folded into
 * one. Nobody awaits them: a write the disk refuses waits for room (DeferredWrites), any other
 * failure is reported, never an unhandled rejection.
 */
export class LatestWrites {
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly deferred: WriteScheduler) {}

  write(key: string, store: StoreCurrent): void {
    const queue = this.queues.get(key);
    if (queue) {
      queue.next = store;
      return;
    }
    const started: Queue = { next: store, done: Promise.resolve() };
    this.queues.set(key, started);
    started.done = this.drain(key, started);
  }

  /** Resolves once every write asked for so far has run. */
  async settled(): Promise<void> {
    while (this.queues.size) await Promise.all([...this.queues.values()].map((q) => q.done));
  }

  private async drain(key: string, queue: Queue): Promise<void> {
    for (let store = queue.next; store; store = queue.next) {
      queue.next = undefined;
      await this.run(key, store);
    }
    this.queues.delete(key);
  }

  private async run(key: string, store: StoreCurrent): Promise<void> {
    try {
      await this.deferred.run(key, store);
    } catch (err) {
      reportQuietly(this.deferred, err, `storing ${key}`);
    }
  }
}

/** A failure told to the scheduler; writeNow (tools, tests) rethrows, which here would only be unhandled. */
export function reportQuietly(deferred: WriteScheduler, err: unknown, what: string): void {
  try {
    deferred.report(err, what);
  } catch {
    process.emitWarning(`${what} failed: ${(err as Error).message}`);
  }
}
