import type { WebSocket } from 'ws';
import type { FastifyBaseLogger } from 'fastify';
import { levelNumber, recordMatchesFields } from '@dvic/protocol';
import type { LogQuery, LogsRepository, StoredLog } from '../repositories/logs-repository.js';
import { matchesText, parseTextQuery, type TextQuery } from '../search/text-query.js';
import { FollowedIds } from './followed-ids.js';

/** What a follower asked for: the filters of GET /api/v1/logs, without paging. */
export type TailFilter = Pick<LogQuery, 'nodeId' | 'demo' | 'source' | 'minLevel' | 'q' | 'fields'>;

interface Subscription {
  filter: TailFilter;
  query: TextQuery | null;
  /** What it had (sent, or before the subscription): a database page reads after `had.last`. */
  had: FollowedIds;
  /** Fed from the database (history, or after falling behind) until caught up. */
  replaying: boolean;
  /** A "from now" follow waits for the newest id; records published meanwhile wait in pending. */
  starting: boolean;
  /** That wait: a flush waits for it too, so what it then sends is after the follow's start. */
  started?: Promise<void>;
  /** A database read for it is under way (one at a time). */
  reading: boolean;
  /** The send under way, if any: a flush waits for it rather than starting another. */
  sending?: Promise<void>;
  /** Pending overflowed during that read: the read cannot be the last one. */
  overflowed: boolean;
  /** Records published that it has not had (sent next, or dropped when the database brings them). */
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
/**
 * PostgreSQL: how far behind the newest id a follower got a record may still be committed by
 * another replica or write lane and be sent (followed-ids.ts). A log transaction holds the ids it
 * took until it commits (at most 5,000 lines: services/log-write-lane.ts); meanwhile the lab takes
 * more: at the goal of 50,000 lines/s, a second.
 */
const LATE_COMMIT_WINDOW = 50_000;

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
 * records after that id, then the new ones as they are committed, with no gap and no duplicate: by
 * increasing id on SQLite; on PostgreSQL, where replicas commit ids out of order, in commit order
 * per replica (so in order per stream), late ids included (followed-ids.ts). A follower that cannot keep up is not dropped: it goes back to being fed from
 * the database, from the last record it got, so the server's memory stays bounded.
 */
export class LogTail {
  private readonly subscriptions = new Map<WebSocket, Subscription>();
  private readonly timer: NodeJS.Timeout;

  /** 0 on SQLite: one writer, ids committed in order. */
  private readonly lateWindow: number;

  constructor(private readonly store: Pick<LogsRepository, 'search' | 'maxId' | 'dialect'>, private readonly log: FastifyBaseLogger) {
    this.lateWindow = store.dialect === 'postgres' ? LATE_COMMIT_WINDOW : 0;
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  /** Follows from afterId (history first), or from now when it is undefined. */
  subscribe(socket: WebSocket, filter: TailFilter, afterId?: number, requestId?: string): void {
    const sub: Subscription = {
      filter, query: filter.q ? parseTextQuery(filter.q) : null, had: new FollowedIds(afterId ?? 0, this.lateWindow), replaying: afterId !== undefined,
      starting: afterId === undefined, reading: false, overflowed: false, pending: [], requestId,
    };
    this.subscriptions.set(socket, sub);
    if (sub.replaying) void this.send(socket, sub);
    else sub.started = this.startFromNow(sub);
  }

  unsubscribe(socket: WebSocket): void {
    this.subscriptions.delete(socket);
  }

  /**
   * Records just committed (one replica's, in id order). Kept even while the database feeds a
   * follower: a record committed after a replay's read is in no page, and reaches the follower
   * from here; so does one committed late, behind ids the follower already got (PostgreSQL).
   */
  publish(records: StoredLog[]): void {
    for (const sub of this.subscriptions.values()) {
      for (const record of records) {
        if (!this.wanted(sub, record)) continue;
        if (sub.pending.length >= MAX_PENDING) this.overflow(sub);
        if (!sub.overflowed || sub.had.isLate(record.id)) sub.pending.push(record);
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Sends every follower what it has waiting (resolves once the database reads, and a "from now" start, are done). */
  async flush(): Promise<void> {
    await Promise.all([...this.subscriptions].map(async ([socket, sub]) => {
      await sub.started;
      await this.send(socket, sub);
    }));
  }

  /** Between database reads the next read brings every record after `had.last`: only late ones wait here. */
  private wanted(sub: Subscription, record: StoredLog): boolean {
    if (!sub.had.isNew(record.id)) return false;
    if (sub.replaying && !sub.reading && !sub.had.isLate(record.id)) return false;
    return matches(sub, record);
  }

  /** Too much waiting: the database feeds it from `had.last`; the late records no page brings stay (the window bounds them). */
  private overflow(sub: Subscription): void {
    sub.pending = sub.pending.filter((r) => sub.had.isLate(r.id));
    if (sub.pending.length >= MAX_PENDING) {
      this.log.warn({ dropped: sub.pending.length }, 'a follower fell behind with this many lines committed late: they are not sent live');
      sub.pending = [];
    }
    sub.replaying = true;
    sub.overflowed = true;
  }

  /** "From now" is after the newest stored id; what was published while asking stays if the follower has not had it. */
  private async startFromNow(sub: Subscription): Promise<void> {
    try {
      sub.had.startAfter(await this.store.maxId());
    } catch (err) {
      this.log.warn({ err }, 'could not read the newest log id: the follow starts with what comes next');
    }
    sub.pending = sub.pending.filter((r) => sub.had.isNew(r.id));
    sub.starting = false;
  }

  private send(socket: WebSocket, sub: Subscription): Promise<void> {
    if (sub.sending) return sub.sending;
    const sending = this.sendNow(socket, sub).finally(() => { sub.sending = undefined; });
    sub.sending = sending;
    return sending;
  }

  private async sendNow(socket: WebSocket, sub: Subscription): Promise<void> {
    if (sub.starting || sub.reading || socket.readyState !== socket.OPEN || socket.bufferedAmount > MAX_BUFFERED_BYTES) return;
    let records: StoredLog[];
    let caughtUp = false;
    if (sub.replaying) {
      const page = await this.readPage(sub);
      if (!page || this.subscriptions.get(socket) !== sub) return;
      sub.had.sentFromDatabase(page.records.map((r) => r.id));
      caughtUp = !page.more && !sub.overflowed;
      sub.replaying = !caughtUp;
      // Published meanwhile and not in the page: late ones go with it (no page brings them);
      // newer ones follow it once caught up (else the next page brings them).
      const waiting = sub.pending.filter((r) => sub.had.isNew(r.id));
      const late = waiting.filter((r) => sub.had.isLate(r.id));
      sub.pending = caughtUp ? waiting.filter((r) => !sub.had.isLate(r.id)) : [];
      records = late.length ? [...page.records, ...late].sort((x, y) => x.id - y.id) : page.records;
    } else {
      records = sub.pending;
      sub.pending = [];
    }
    if (records.length === 0 && !caughtUp) return;
    sub.had.sentLive(records.map((r) => r.id));
    if (socket.readyState !== socket.OPEN) return;
    const id = sub.requestId === undefined ? {} : { id: sub.requestId };
    socket.send(JSON.stringify({ type: 'logs.records', ...id, data: { records, ...(caughtUp ? { caught_up: true } : {}) } }));
  }

  /** The next page from the database; null when it could not be read (tried again at the next flush). */
  private async readPage(sub: Subscription): Promise<{ records: StoredLog[]; more: boolean } | null> {
    sub.reading = true;
    sub.overflowed = false;
    try {
      return await this.store.search({ ...sub.filter, afterId: sub.had.last, limit: REPLAY_PAGE });
    } catch (err) {
      this.log.warn({ err }, 'could not read logs for a follower: trying again shortly');
      return null;
    } finally {
      sub.reading = false;
    }
  }
}
