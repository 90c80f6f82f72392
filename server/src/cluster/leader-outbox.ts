import type { FastifyBaseLogger } from 'fastify';
import type pg from 'pg';
import type { Sql } from '../db/sql.js';
import type { LeaderJob } from './leader-jobs.js';
import { NotLeaderError, type LeaderLease } from './leader-lease.js';

/**
 * Made by migration 0016; made here too when missing (a database the migrations did not run on,
 * such as a test's bare one).
 */
const TABLE = 'dvic_leader_outbox';
const CREATE = `CREATE TABLE IF NOT EXISTS ${TABLE} (
  key TEXT PRIMARY KEY, payload TEXT NOT NULL, created_at BIGINT NOT NULL, sent_at BIGINT
)`;
/** A session's start in microseconds, as text: the same whatever the session's time zone and date style. */
const STARTED_US = '(extract(epoch FROM a.backend_start) * 1000000)::bigint::text';
/** Rows delivered and older than this are deleted (the keys only have to outlive a handover). */
const KEEP_SENT_MS = 7 * 86_400_000;
const BATCH = 100;
/** Entries handed over and not settled yet, at most: past it, the relay waits for the next poll. */
const MAX_IN_FLIGHT = 1000;

export interface LeaderOutboxOptions {
  /**
   * Sends one entry (e.g. stores an alert notification's deliveries): settled, it is marked sent (a
   * failure is logged, not retried); resolved false, it was not taken and stays unsent (tried
   * again at the next poll, or by the next leader). Entries are handed over in order without
   * waiting for the one before (the notifier groups them).
   */
  deliver: (payload: string, key: string) => Promise<boolean | void>;
  /** How often the relay looks for entries another leader left unsent (new ones are sent at once). */
  pollMs: number;
  log: FastifyBaseLogger;
}

/**
 * What a leader tells the world (alert notifications) goes through here so that a handover never
 * tells it twice: an entry is recorded under a unique key in a transaction on the session holding
 * the lease (lease.asLeader), so a deposed leader cannot record it and two leaders computing the
 * same entry record it once; the relay, a leader job, sends unsent entries after commit, and the
 * next leader sends what the last one recorded and did not get to send. An entry is sent again
 * only when the leader died between sending it and marking it sent.
 */
export class LeaderOutbox {
  private timer: NodeJS.Timeout | undefined;
  private relaying: Promise<void> = Promise.resolve();
  private running = false;
  private tableMade = false;
  /** The session holding the lease (backend pid and start), while the relay runs: the fence of addIn and markSentIn. */
  private leaseSession: { pid: number; started: string } | null = null;
  /** Keys handed to deliver and not settled yet (not handed again). */
  private readonly inFlight = new Set<string>();
  /** Which run of the relay an entry was handed in: one settling after a stop (or a new start) marks nothing. */
  private term = 0;

  constructor(private readonly lease: Pick<LeaderLease, 'asLeader' | 'lockKey'>, private readonly options: LeaderOutboxOptions) {}

  /** Records an entry (only the leader can; NotLeaderError otherwise). False when its key was recorded already. */
  async add(key: string, payload: string): Promise<boolean> {
    const added = await this.lease.asLeader(async (client) => {
      await this.ensureTable(client);
      const { rowCount } = await client.query(`INSERT INTO ${TABLE} (key, payload, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING`, [key, payload, Date.now()]);
      return rowCount === 1;
    });
    if (added) this.kick();
    return added;
  }

  /**
   * Records an entry in the caller's open transaction on the shared database (the one that writes
   * what decided it, e.g. the alert that fires), so that both commit or neither does. Fenced by the
   * lease: the transaction fails (NotLeaderError) unless the lease's session still holds its lock
   * (pg_locks), so a deposed leader records nothing. Sent by the relay once that transaction commits.
   */
  async addIn(sql: Pick<Sql, 'get' | 'run' | 'afterCommit'>, key: string, payload: string): Promise<boolean> {
    await this.fence(sql, 'the entry is the leader\'s to record');
    const { changes } = await sql.run(`INSERT INTO ${TABLE} (key, payload, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`, [key, payload, Date.now()]);
    sql.afterCommit(() => this.kick());
    return changes === 1;
  }

  /**
   * Marks entries sent in the caller's open transaction (the one storing what they delivered, e.g.
   * an alert's deliveries), fenced as addIn is: both commit or neither does, so a leader that dies
   * in between leaves either nothing stored and the entries unsent, or both.
   */
  async markSentIn(sql: Pick<Sql, 'get' | 'run'>, keys: string[]): Promise<void> {
    const distinct = [...new Set(keys)];
    if (!distinct.length) return;
    await this.fence(sql, 'a deposed leader marks nothing sent');
    const { changes } = await sql.run(`UPDATE ${TABLE} SET sent_at = ? WHERE sent_at IS NULL AND key IN (${distinct.map(() => '?').join(', ')})`, [Date.now(), ...distinct]);
    // Marked already: another leader (or this one in an earlier term) stored their delivery. The
    // caller's transaction must not store a second one.
    if (changes < distinct.length) throw new Error('these outbox entries were sent by another leader meanwhile');
  }

  /**
   * Fails the caller's transaction (NotLeaderError) unless the lease's session still holds the
   * lease's own lock: that lock, not any advisory lock, and that session, not a later one that
   * got its pid (its start time tells them apart).
   */
  private async fence(sql: Pick<Sql, 'get'>, why: string): Promise<void> {
    const session = this.running ? this.leaseSession : null;
    const held = session !== null && await sql.get(`
      SELECT 1 AS held FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid = ? AND ${STARTED_US} = ?
        AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(?, 0)`, [session.pid, session.started, this.lease.lockKey]);
    if (!held) throw new NotLeaderError(`not the leader: ${why}`);
  }

  /** The relay, to run with the leader's other jobs. */
  job(): LeaderJob {
    return {
      name: 'outbox relay',
      start: async () => {
        this.tableMade = false; // another session: the table may have been dropped with a test database
        this.leaseSession = await this.lease.asLeader(async (client) => (await client.query<{ pid: number; started: string }>(
          `SELECT pid, ${STARTED_US} AS started FROM pg_stat_activity a WHERE pid = pg_backend_pid()`)).rows[0]!);
        this.running = true;
        this.term++;
        this.kick();
      },
      stop: async () => {
        this.running = false;
        this.leaseSession = null;
        this.term++;
        this.inFlight.clear();
        clearTimeout(this.timer);
        await this.relaying;
      },
    };
  }

  private kick(): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.relaying = this.relaying.then(() => this.relay()).finally(() => this.schedule());
  }

  private schedule(): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), this.options.pollMs);
    this.timer.unref();
  }

  /** Hands the unsent entries over, oldest first; each is marked sent once its delivery settled. */
  private async relay(): Promise<void> {
    try {
      for (;;) {
        const limit = BATCH + this.inFlight.size;
        const rows = await this.lease.asLeader(async (client) => {
          await this.ensureTable(client);
          await client.query(`DELETE FROM ${TABLE} WHERE sent_at < $1`, [Date.now() - KEEP_SENT_MS]);
          return (await client.query<{ key: string; payload: string }>(`SELECT key, payload FROM ${TABLE} WHERE sent_at IS NULL ORDER BY created_at, key LIMIT ${limit}`)).rows;
        });
        for (const row of rows) {
          if (!this.running) return;
          if (!this.inFlight.has(row.key)) this.handOver(row.key, row.payload);
        }
        if (rows.length < limit || this.inFlight.size >= MAX_IN_FLIGHT) return;
      }
    } catch (err) {
      // Not the leader any more, or the database is away: the next leader (or the next poll) sends it.
      this.options.log.warn({ err: (err as Error).message }, 'the outbox relay stopped short: unsent entries wait for the next try');
    }
  }

  private handOver(key: string, payload: string): void {
    const term = this.term;
    this.inFlight.add(key);
    void this.deliver(key, payload).then(async (taken) => {
      if (term !== this.term) return; // stopped meanwhile: the next leader sends it
      this.inFlight.delete(key);
      if (!taken) return;
      await this.lease.asLeader((client) => client.query(`UPDATE ${TABLE} SET sent_at = $2 WHERE key = $1`, [key, Date.now()]))
        .catch((err: Error) => this.options.log.warn({ key, err: err.message }, 'an outbox entry delivered could not be marked sent: the next leader may send it again'));
    });
  }

  /**
   * An entry that cannot be delivered (a bug, a payload of an older version) is logged and given
   * up, never retried: it must not hold back every entry after it. Retrying what time cures is the
   * deliverer's own (the alert notifier retries deliveries). Whether it was taken.
   */
  private async deliver(key: string, payload: string): Promise<boolean> {
    try {
      return (await this.options.deliver(payload, key)) !== false;
    } catch (err) {
      this.options.log.error({ key, err: (err as Error).message }, 'an outbox entry could not be delivered: given up');
      return true;
    }
  }

  private async ensureTable(client: pg.Client): Promise<void> {
    if (this.tableMade) return;
    await client.query(CREATE);
    this.tableMade = true;
  }
}
