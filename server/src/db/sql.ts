/**
 * The server's database as repositories use it: asynchronous, so one code path runs on the
 * embedded SQLite file (sqlite-sql.ts) and on PostgreSQL for scale-out (postgres-sql.ts).
 *
 * SQL is written once, with `?` placeholders, in the subset both dialects share (`INSERT ...
 * ON CONFLICT`, `RETURNING`, `LIMIT`/`OFFSET`, `COALESCE`). Where they differ (full-text search,
 * JSON operators), a repository asks `dialect`. Integers come back as JS numbers in both (ms
 * timestamps fit in 53 bits); blobs as Buffers.
 */
export type Dialect = 'sqlite' | 'postgres';

export type SqlValue = string | number | bigint | Buffer | null;

export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number;
}

export interface Sql {
  readonly dialect: Dialect;
  /** Transactions that can be open at once: SQLite's one connection, or PostgreSQL's pool size. */
  readonly connections: number;
  all<Row>(text: string, params?: readonly SqlValue[]): Promise<Row[]>;
  get<Row>(text: string, params?: readonly SqlValue[]): Promise<Row | undefined>;
  run(text: string, params?: readonly SqlValue[]): Promise<RunResult>;
  /** One statement for many parameter rows, in one transaction (the hot paths: log batches, live state). */
  runMany(text: string, rows: readonly (readonly SqlValue[])[]): Promise<RunResult>;
  /**
   * Runs work in one transaction: committed when it resolves, rolled back when it throws. Inside
   * an open transaction of the same async context it is a savepoint. Statements of other contexts
   * wait until it ends, so they never see or join its half-made changes.
   */
  transaction<T>(work: () => Promise<T>): Promise<T>;
  /**
   * Runs fn once the outermost transaction of this async context has committed (at once when none
   * is open; never if it rolls back). In-memory state follows the database this way.
   */
  afterCommit(fn: () => void): void;
  /**
   * Runs maintenance that may take longer than the statement timeout (whole-table scans and
   * deletes, VACUUM) without it, outside any transaction. SQLite has no such bound: work runs as is.
   */
  unbounded<T>(work: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
