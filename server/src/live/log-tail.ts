import type { WebSocket } from 'ws';
import type { StoredLog } from '../repositories/logs-repository.js';
import { levelNumber } from '../repositories/logs-repository.js';

export interface TailFilter {
  nodeId?: string;
  demo?: string;
  source?: 'demo' | 'system';
  minLevel?: number;
  /** Lowercase words that must all appear in the message. */
  words?: string[];
}

interface Subscription {
  filter: TailFilter;
  pending: StoredLog[];
  dropped: number;
}

/** At most this many records wait per subscriber; beyond, records are dropped and counted. */
const MAX_PENDING = 5000;
/** A subscriber with this much unsent data gets no new batch until it drains. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const FLUSH_MS = 50;

export function matches(filter: TailFilter, r: StoredLog): boolean {
  if (filter.nodeId && r.node_id !== filter.nodeId) return false;
  if (filter.demo && r.demo !== filter.demo) return false;
  if (filter.source && r.source !== filter.source) return false;
  if (filter.minLevel !== undefined && levelNumber(r.level) < filter.minLevel) return false;
  if (filter.words?.length) {
    const text = r.message.toLowerCase();
    if (!filter.words.every((w) => text.includes(w))) return false;
  }
  return true;
}

/**
 * Live log tail for dashboards and the CLI: matching records are batched per subscriber and sent
 * every 50 ms. A subscriber that cannot keep up is sampled (records dropped and counted), so it
 * can never make the server's memory grow.
 */
export class LogTail {
  private readonly subscriptions = new Map<WebSocket, Subscription>();
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  subscribe(socket: WebSocket, filter: TailFilter): void {
    this.subscriptions.set(socket, { filter, pending: [], dropped: 0 });
  }

  unsubscribe(socket: WebSocket): void {
    this.subscriptions.delete(socket);
  }

  publish(records: StoredLog[]): void {
    for (const sub of this.subscriptions.values()) {
      for (const record of records) {
        if (!matches(sub.filter, record)) continue;
        if (sub.pending.length < MAX_PENDING) sub.pending.push(record);
        else sub.dropped++;
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private flush(): void {
    for (const [socket, sub] of this.subscriptions) {
      if ((sub.pending.length === 0 && sub.dropped === 0) || socket.readyState !== socket.OPEN) continue;
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) continue;
      socket.send(JSON.stringify({ type: 'logs.records', data: { records: sub.pending, ...(sub.dropped ? { dropped: sub.dropped } : {}) } }));
      sub.pending = [];
      sub.dropped = 0;
    }
  }
}
