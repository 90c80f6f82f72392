import { EventEmitter } from 'node:events';
import pg from 'pg';

export interface LeaderLeaseOptions {
  databaseUrl: string;
  /** What the lease is for ("alerts-and-retention"): one lease per name and database. */
  name: string;
  /** How often a follower tries to take the lease and the leader checks its session. */
  checkMs: number;
  onElected?: () => void;
  onDeposed?: (reason: string) => void;
}

/** The work a leader does runs on the session that holds the lock: when the lease is lost, its writes fail. */
export class NotLeaderError extends Error {}

/**
 * Exactly one replica holds the lease: a PostgreSQL session-level advisory lock, held by a
 * connection of its own. The lock goes with the session: when the holder dies, its connection
 * closes and the lock is free for the next follower's try (within checkMs). A partitioned
 * leader steps down first: its own check fails within checkMs, while the database drops its
 * session only after TCP keepalives fail (about 11 s).
 */
export class LeaderLease extends EventEmitter<{ elected: []; deposed: [reason: string] }> {
  private client: pg.Client | null = null;
  private leader = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  /** One statement or transaction at a time on the session: a second BEGIN would join the first's transaction. */
  private sessionQueue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: LeaderLeaseOptions) {
    super();
  }

  start(): void {
    this.schedule(0);
  }

  isLeader(): boolean {
    return this.leader;
  }

  /** The text whose hash is the lock's key (pg_locks shows it as classid << 32 | objid). */
  get lockKey(): string {
    return `dvic:${this.options.name}`;
  }

  /**
   * Runs leader work in one transaction on the session holding the lock, so that it commits only
   * while this replica is the leader. Throws NotLeaderError when it is not. One at a time, in the
   * order asked (work must not call asLeader itself: it would wait for its own end).
   */
  async asLeader<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    return this.onSession(() => this.transaction(work));
  }

  private async transaction<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = this.client;
    if (!this.leader || !client) throw new NotLeaderError(`not the leader of "${this.options.name}"`);
    await client.query('BEGIN');
    try {
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined); // the session may be gone: then so is the transaction
      throw err;
    }
  }

  /** Runs after what the session is doing (the leader's transactions and its own checks). */
  private onSession<T>(run: () => Promise<T>): Promise<T> {
    const result = this.sessionQueue.then(run);
    this.sessionQueue = result.catch(() => undefined);
    return result;
  }

  /** Gives the lease up at once (an orderly stop hands over without waiting for a timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    this.lose('stopped');
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => this.schedule(this.options.checkMs));
    }, delayMs);
  }

  private async tick(): Promise<void> {
    try {
      const client = this.client ?? (this.client = await this.connect());
      if (this.leader) {
        await this.onSession(() => client.query('SELECT 1')); // the session, and so the lock, is still there
        return;
      }
      const { rows } = await client.query<{ held: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS held', [this.lockKey]);
      if (rows[0]?.held && !this.stopped) {
        this.leader = true;
        this.options.onElected?.();
        this.emit('elected');
      }
    } catch (err) {
      this.lose(`lost the database session: ${(err as Error).message}`);
    }
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.options.databaseUrl, connectionTimeoutMillis: this.options.checkMs * 2, query_timeout: this.options.checkMs * 2,
      keepAlive: true, application_name: `dvic-lease-${this.options.name}`.slice(0, 63),
      // The database notices a vanished leader's session (and frees the lock) within about 11 s.
      options: '-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3',
    });
    client.on('error', (err) => this.lose(`lost the database session: ${err.message}`));
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return client;
  }

  private lose(reason: string): void {
    const client = this.client;
    this.client = null;
    void client?.end().catch(() => undefined);
    if (!this.leader) return;
    this.leader = false;
    this.options.onDeposed?.(reason);
    this.emit('deposed', reason);
  }
}
