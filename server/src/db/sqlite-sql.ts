import type { Statement } from 'better-sqlite3';
import type { Db } from './database.js';
import type { RunResult, Sql, SqlValue } from './sql.js';
import { TransactionContext, type CallbackErrorHandler, type OpenTransaction } from './transaction-context.js';

/** Prepared statements kept per connection; SQL texts are constants, so few more than this exist. */
const MAX_CACHED_STATEMENTS = 1000;

/**
 * The async `Sql` over the embedded better-sqlite3 connection. Statements run synchronously (the
 * fastest way to use SQLite); they are async only to share one code path with PostgreSQL.
 *
 * One connection means one transaction at a time: while an async context holds one, statements
 * and transactions of other contexts wait for its end (they would otherwise run inside it). The
 * async context is tracked with AsyncLocalStorage, so repositories need not pass a handle around.
 */
export class SqliteSql implements Sql {
  readonly dialect = 'sqlite' as const;
  readonly connections = 1;
  private readonly statements = new Map<string, Statement>();
  private readonly context: TransactionContext<OpenTransaction>;
  private open: { transaction: OpenTransaction; ended: Promise<void> } | undefined;
  private lockStatement: Statement | undefined;

  constructor(readonly db: Db, options: { onCallbackError?: CallbackErrorHandler } = {}) {
    this.context = new TransactionContext(options.onCallbackError);
  }

  async all<Row>(text: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    await this.myTurn();
    return this.statement(text).all(...params) as Row[];
  }

  async get<Row>(text: string, params: readonly SqlValue[] = []): Promise<Row | undefined> {
    await this.myTurn();
    return this.statement(text).get(...params) as Row | undefined;
  }

  async run(text: string, params: readonly SqlValue[] = []): Promise<RunResult> {
    await this.myTurn();
    return { changes: this.statement(text).run(...params).changes };
  }

  async runMany(text: string, rows: readonly (readonly SqlValue[])[]): Promise<RunResult> {
    await this.myTurn();
    const statement = this.statement(text);
    let changes = 0;
    // Synchronous from here on: nothing else can run inside this (or the caller's) transaction.
    this.db.transaction(() => {
      for (const row of rows) changes += statement.run(...row).changes;
    })();
    return { changes };
  }

  async transaction<T>(work: () => Promise<T>): Promise<T> {
    const mine = this.context.mine();
    if (mine && this.open?.transaction === mine) return this.context.savepoint(this.savepoints, work);
    while (this.open) await this.open.ended;
    const transaction: OpenTransaction = { callbacks: [], ended: false, savepoints: 0 };
    let end!: () => void;
    this.open = { transaction, ended: new Promise((resolve) => (end = resolve)) };
    let result: T;
    try {
      this.begin();
      try {
        result = await this.context.run(transaction, work);
        this.db.exec('COMMIT');
      } catch (err) {
        // Some errors (SQLITE_FULL, say) have already rolled the transaction back.
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    } finally {
      transaction.ended = true;
      this.open = undefined;
      end();
    }
    this.context.committed(transaction);
    return result;
  }

  afterCommit(fn: () => void): void {
    this.context.afterCommit(fn);
  }

  /** SQLite has no statement timeout: the work runs as it is. */
  unbounded<T>(work: () => Promise<T>): Promise<T> {
    return work();
  }

  async close(): Promise<void> {
    this.statements.clear();
  }

  /**
   * Begins with the write lock on the main database taken now (a reader upgraded later could fail
   * with SQLITE_BUSY), and on it only: BEGIN IMMEDIATE would take it on every attached database
   * too, and the full-text index file's worker (db/log-search-index.ts) would then wait through
   * every log write, fall behind a stream and catch up in bursts on top of the size cap. A write
   * that changes no row (WHERE 0) takes the lock without writing a page.
   */
  private begin(): void {
    this.lockStatement ??= lockingNoOp(this.db);
    if (!this.lockStatement) return void this.db.exec('BEGIN IMMEDIATE');
    this.db.exec('BEGIN');
    try {
      this.lockStatement.run();
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /** Waits while another async context holds the connection's transaction. */
  private async myTurn(): Promise<void> {
    while (this.open && this.open.transaction !== this.context.mine()) await this.open.ended;
  }

  private readonly savepoints = {
    begin: (name: string) => this.db.exec(`SAVEPOINT ${name}`),
    release: (name: string) => this.db.exec(`RELEASE ${name}`),
    rollback: (name: string) => { if (this.db.inTransaction) this.db.exec(`ROLLBACK TO ${name}; RELEASE ${name}`); },
  };

  private statement(text: string): Statement {
    let statement = this.statements.get(text);
    if (statement) return statement;
    statement = this.db.prepare(text);
    if (this.statements.size >= MAX_CACHED_STATEMENTS) this.statements.delete(this.statements.keys().next().value!);
    this.statements.set(text, statement);
    return statement;
  }
}

/** `DELETE ... WHERE 0` on a table of the main database (none before the first migration: undefined). */
function lockingNoOp(db: Db): Statement | undefined {
  const table = db.prepare(`
    SELECT name FROM main.sqlite_master
    WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY rootpage LIMIT 1`).pluck().get() as string | undefined;
  return table === undefined ? undefined : db.prepare(`DELETE FROM main."${table.replaceAll('"', '""')}" WHERE 0`);
}
