import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { poolTimeouts, type PostgresTimeouts } from './postgres-timeouts.js';
import { multiRowInsert, numberPlaceholders, type Converted } from './postgres-placeholders.js';
import type { RunResult, Sql, SqlValue } from './sql.js';
import { TransactionContext, type CallbackErrorHandler, type OpenTransaction } from './transaction-context.js';

/** Converted texts kept; SQL texts are constants, so few more than this exist. */
const MAX_CACHED_TEXTS = 1000;
/** PostgreSQL takes at most 65,535 parameters in one statement. */
const MAX_PARAMETERS = 65_535;

/**
 * The client's wait for an answer inside unbounded(): long, but a timer still (setTimeout takes
 * at most 2^31-1 ms; pg treats 0 as "the pool's bound"), so a vanished peer is still given up on.
 */
const UNBOUNDED_ANSWER_MS = 24 * 3600_000;

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * This pool's type parsers: 64-bit integers (ids, ms timestamps, COUNT) and numerics (SUM) as JS
 * numbers, as SQLite gives them; set per pool so other pg users in the process keep the defaults.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export interface PostgresOptions {
  /** postgres://user[:password]@host[:port]/database */
  url: string;
  /** Connections at most (DVIC_DATABASE_POOL). */
  poolSize: number;
  /** Where a connection's failure outside a statement is reported (the pool opens a new one when needed). */
  onIdleError?: (err: Error) => void;
  /** Where an afterCommit callback that threw is reported (the others still run). */
  onCallbackError?: CallbackErrorHandler;
  connectionTimeoutMillis?: number;
  /** Statement, idle-in-transaction and answer bounds (postgres-timeouts.ts); the defaults unless given. */
  timeouts?: PostgresTimeouts;
}

/** The database could not be reached (or the connection broke): it names where, never the password. */
export class DatabaseUnreachableError extends Error {
  constructor(where: string, readonly code: string, cause: Error) {
    super(`PostgreSQL at ${where} is unreachable: ${cause.message}`, { cause });
  }
}

/**
 * Codes of a connection that failed (socket errno, 08xxx connection exceptions but 08P01, a bug of
 * ours; 57P01-03 shutdown / startup; 53300 too many connections). Any other failure to connect
 * (authentication, say) gets 08006 (connection_failure).
 */
const CONNECTION_CODES = /^(E[A-Z_]+|0800[0-6]|57P0[1-3]|53300)$/;

/** One open transaction: its connection and what runs after its commit. */
interface PooledTransaction extends OpenTransaction {
  client: pg.PoolClient;
  /** The last statement sent on client: the next one goes after it (pg takes one at a time). */
  last: Promise<unknown>;
}

/**
 * The async `Sql` over a `pg` pool. A transaction holds one connection of the pool; the async
 * context that opened it (tracked with AsyncLocalStorage) runs its statements there, while
 * statements of other contexts take other connections and run at the same time, as PostgreSQL
 * isolates them.
 */
export class PostgresSql implements Sql {
  readonly dialect = 'postgres' as const;
  readonly connections: number;
  /** host:port/database, for messages (never the password). */
  readonly where: string;
  private readonly pool: pg.Pool;
  private readonly texts = new Map<string, Converted>();
  private readonly context: TransactionContext<PooledTransaction>;
  /** Connections with this class's error listener (once each: the pool reuses them). */
  private readonly heard = new WeakSet<pg.PoolClient>();
  private readonly onIdleError: ((err: Error) => void) | undefined;
  /** Set inside unbounded(): the connections taken there run without the statement timeout. */
  private readonly unboundedScope = new AsyncLocalStorage<true>();

  constructor(options: PostgresOptions) {
    this.connections = options.poolSize;
    this.onIdleError = options.onIdleError;
    this.context = new TransactionContext(options.onCallbackError);
    this.where = describeDatabase(options.url);
    this.pool = new pg.Pool({
      connectionString: options.url, max: options.poolSize, types,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
      ...poolTimeouts(options.timeouts),
    });
    // Without a listener an idle connection's error (the server restarted) would end the process.
    this.pool.on('error', (err) => this.onIdleError?.(err));
  }

  async all<Row>(text: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    return (await this.query(text, params)).rows as Row[];
  }

  async get<Row>(text: string, params: readonly SqlValue[] = []): Promise<Row | undefined> {
    return (await this.query(text, params)).rows[0] as Row | undefined;
  }

  async run(text: string, params: readonly SqlValue[] = []): Promise<RunResult> {
    return { changes: (await this.query(text, params)).rowCount ?? 0 };
  }

  async runMany(text: string, rows: readonly (readonly SqlValue[])[]): Promise<RunResult> {
    if (rows.length === 0) return { changes: 0 };
    const width = this.converted(text).count;
    const perStatement = width > 0 ? Math.floor(MAX_PARAMETERS / width) : rows.length;
    const chunks: (readonly (readonly SqlValue[])[])[] = [];
    for (let i = 0; i < rows.length; i += perStatement) chunks.push(rows.slice(i, i + perStatement));
    const many = multiRowInsert(text, Math.min(rows.length, perStatement));
    return this.transaction(async () => {
      let changes = 0;
      if (many) {
        for (const chunk of chunks) {
          const chunkText = chunk.length === chunks[0]!.length ? many : multiRowInsert(text, chunk.length)!;
          changes += (await this.query(chunkText, chunk.flat())).rowCount ?? 0;
        }
      } else {
        // Queued on the transaction's connection at once: no wait between one row and the next.
        const results = await Promise.all(rows.map((row) => this.query(text, row)));
        for (const result of results) changes += result.rowCount ?? 0;
      }
      return { changes };
    });
  }

  async transaction<T>(work: () => Promise<T>): Promise<T> {
    const open = this.context.open();
    if (open) return this.context.savepoint(this.savepoints(open), work);
    const client = await this.connect();
    const transaction: PooledTransaction = { client, last: Promise.resolve(), callbacks: [], ended: false, savepoints: 0 };
    let broken: Error | undefined;
    let result: T;
    try {
      await this.on(client, 'BEGIN');
      try {
        result = await this.context.run(transaction, work);
        await this.inTransaction(transaction, 'COMMIT');
      } catch (err) {
        await this.inTransaction(transaction, 'ROLLBACK').catch((rollbackFailed: Error) => { broken = rollbackFailed; });
        throw err;
      }
    } catch (err) {
      if (err instanceof DatabaseUnreachableError) broken = err;
      throw err;
    } finally {
      transaction.ended = true;
      // A connection that failed is closed, not given back to the pool.
      await this.release(client, broken);
    }
    this.context.committed(transaction);
    return result;
  }

  /**
   * Maintenance that scans or deletes a whole table (the log byte recount, retention, VACUUM) may
   * take longer than the statement timeout on a big table, and failing it would stop retention for
   * good. Its connections are taken with statement_timeout = 0 (a session setting: VACUUM cannot run
   * in a transaction) and given back reset. Call it outside a transaction: one open already keeps
   * its bounded connection.
   */
  unbounded<T>(work: () => Promise<T>): Promise<T> {
    return this.unboundedScope.run(true, work);
  }

  afterCommit(fn: () => void): void {
    this.context.afterCommit(fn);
  }

  async close(): Promise<void> {
    this.texts.clear();
    await this.pool.end();
  }

  private savepoints(transaction: PooledTransaction) {
    return {
      begin: (name: string) => this.inTransaction(transaction, `SAVEPOINT ${name}`),
      release: (name: string) => this.inTransaction(transaction, `RELEASE SAVEPOINT ${name}`),
      // After a failed statement PostgreSQL refuses everything in the transaction until this.
      rollback: (name: string) => this.inTransaction(transaction, `ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`),
    };
  }

  /** Runs a statement in this context's transaction when one is open, otherwise on any pooled connection. */
  private async query(text: string, params: readonly SqlValue[]): Promise<pg.QueryResult> {
    const statement = { text: this.converted(text).text, values: params as SqlValue[] };
    const transaction = this.context.open();
    if (transaction) return this.inTransaction(transaction, statement);
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      return await this.on(client, statement);
    } catch (err) {
      if (err instanceof DatabaseUnreachableError) broken = err;
      throw err;
    } finally {
      await this.release(client, broken);
    }
  }

  /** A statement of an open transaction, after the ones sent before it (sibling contexts may send at once). */
  private inTransaction(transaction: PooledTransaction, statement: string | pg.QueryConfig): Promise<pg.QueryResult> {
    const result = transaction.last.then(() => this.on(transaction.client, statement));
    transaction.last = result.catch(() => undefined);
    return result;
  }

  /** A statement on one connection; a broken connection becomes a DatabaseUnreachableError. */
  private async on(client: pg.PoolClient, statement: string | pg.QueryConfig): Promise<pg.QueryResult> {
    try {
      const unbounded = this.unboundedScope.getStore() ? { query_timeout: UNBOUNDED_ANSWER_MS } : {};
      return await client.query({ ...(typeof statement === 'string' ? { text: statement } : statement), ...unbounded });
    } catch (err) {
      throw err instanceof pg.DatabaseError && !CONNECTION_CODES.test(err.code ?? '') ? err : this.unreachable(err);
    }
  }

  private async connect(): Promise<pg.PoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.unreachable(err);
    }
    // The pool listens only to idle connections: one taken out that the server ends (idle in a
    // transaction past its timeout, a restart) would emit an error nobody hears, which ends the
    // process. Heard here, the next statement on it fails and it is released broken.
    if (!this.heard.has(client)) {
      this.heard.add(client);
      client.on('error', (err) => this.onIdleError?.(err));
    }
    if (this.unboundedScope.getStore()) {
      try {
        await this.on(client, 'SET statement_timeout = 0');
      } catch (err) {
        client.release(err as Error);
        throw err;
      }
    }
    return client;
  }

  /** Gives a connection back to the pool (closed when it failed), with its own statement timeout again after unbounded(). */
  private async release(client: pg.PoolClient, broken: Error | undefined): Promise<void> {
    if (!broken && this.unboundedScope.getStore()) {
      // RESET: back to the session's default, the statement_timeout the pool connected with.
      await this.on(client, 'RESET statement_timeout').catch((err: Error) => { broken = err; });
    }
    client.release(broken);
  }

  private unreachable(err: unknown): DatabaseUnreachableError {
    const cause = err instanceof Error ? err : new Error(String(err));
    const code = (cause as { code?: unknown }).code;
    return new DatabaseUnreachableError(this.where, typeof code === 'string' && CONNECTION_CODES.test(code) ? code : '08006', cause);
  }

  private converted(text: string): Converted {
    let converted = this.texts.get(text);
    if (converted) return converted;
    converted = numberPlaceholders(text);
    if (this.texts.size >= MAX_CACHED_TEXTS) this.texts.delete(this.texts.keys().next().value!);
    this.texts.set(text, converted);
    return converted;
  }
}

/** host:port/database of a postgres:// URL, without user or password. */
export function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}${parsed.pathname || '/'}`;
  } catch {
    return 'an unparsable URL';
  }
}
