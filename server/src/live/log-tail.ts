import type { WebSocket } from 'ws';
import { levelNumber, recordMatchesFields } from '@dvic/protocol';
import type { LogQuery, LogsRepository, StoredLog } from '../repositories/logs-repository.js';
import { matchesText, parseTextQuery, type TextQuery } from '../search/text-query.js';

/** What a follower asked for: the filters of GET /api/v1/logs, without paging. */
export type TailFilter = Pick<LogQuery, 'nodeId' | 'demo' | 'source' | 'minLevel' | 'q' | 'fields'>;

interface Subscription {
  filter: TailFilter;
  query: TextQuery | null;
  /** Every matching record up to this id has been sent (or was before the subscription). */
  lastId: number;
  /** Fed from the database (history, or after falling behind) until caught up. */
  replaying: boolean;
  pending: StoredLog[];
  /** The id of the logs.subscribe, echoed on every batch it answers: a client that changed its
   *  filters tells the new subscription's records from the old one's still in flight. */
  requestId?: string;
}

/** Records a follower may have waiting; beyond, it is fed from the database instead (nothing dropped). */
const MAX_PENDING = 5000;
/** A follower with this much unsent data gets no new batch until it drains. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const REPLAY_PAGE = 500;
const FLUSH_MS = 50;

export function matches(sub: Pick<Subscription, 'filter' | 'query'>, r: StoredLog): boolean {
  const { filter } = sub;
  if (filter.nodeId && r.node_id !== filter.nodeId) return false;
  if (filter.demo && r.demo !== filter.demo) return false;
  if (filter.source && r.source !== filter.source) return false;
  if (filter.minLevel !== undefined && levelNumber(r.level) < filter.minLevel) return false;
  if (filter.fields && !recordMatchesFields(r.fields, filter.fields)) return false;
  return sub.query === null || matchesText(sub.query, r.message);
}

/**
 * The one way to follow logs (dashboard and CLI): `logs.subscribe` with after_id replays the stored
 * records after that id, then the new ones as they are committed, by increasing id, with no gap
 * and no duplicate. A follower that cannot keep up is not dropped: it goes back to being fed from
 * the database, from the last record it got, so the server's memory stays bounded.
 */
export class LogTail {
  private readonly subscriptions = new Map<WebSocket, Subscription>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly store: LogsRepository) {
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  /** Follows from afterId (history first), or from now when it is undefined. */
  subscribe(socket: WebSocket, filter: TailFilter, afterId?: number, requestId?: string): void {
    const replaying = afterId !== undefined;
    this.subscriptions.set(socket, {
      filter, query: filter.q ? parseTextQuery(filter.q) : null, lastId: afterId ?? this.store.maxId(), replaying, pending: [], requestId,
    });
    if (replaying) this.send(socket, this.subscriptions.get(socket)!);
  }

  unsubscribe(socket: WebSocket): void {
    this.subscriptions.delete(socket);
  }

  /** Records just committed (in id order). */
  publish(records: StoredLog[]): void {
    for (const sub of this.subscriptions.values()) {
      if (sub.replaying) continue; // the database has them: the replay will get there
      for (const record of records) {
        if (record.id <= sub.lastId || !matches(sub, record)) continue;
        if (sub.pending.length >= MAX_PENDING) {
          sub.pending = [];
          sub.replaying = true;
          break;
        }
        sub.pending.push(record);
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private flush(): void {
    for (const [socket, sub] of this.subscriptions) this.send(socket, sub);
  }

  private send(socket: WebSocket, sub: Subscription): void {
    if (socket.readyState !== socket.OPEN || socket.bufferedAmount > MAX_BUFFERED_BYTES) return;
    let records: StoredLog[];
    let caughtUp = false;
    if (sub.replaying) {
      const page = this.store.search({ ...sub.filter, afterId: sub.lastId, limit: REPLAY_PAGE });
      records = page.records;
      caughtUp = !page.more;
      sub.replaying = !caughtUp;
    } else {
      records = sub.pending;
      sub.pending = [];
    }
    if (records.length === 0 && !caughtUp) return;
    if (records.length) sub.lastId = records.at(-1)!.id;
    const id = sub.requestId === undefined ? {} : { id: sub.requestId };
    socket.send(JSON.stringify({ type: 'logs.records', ...id, data: { records, ...(caughtUp ? { caught_up: true } : {}) } }));
  }
}
