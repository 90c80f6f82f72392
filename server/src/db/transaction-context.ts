import { AsyncLocalStorage } from 'node:async_hooks';

/** What every dialect keeps of one open transaction: what runs after its commit. */
export interface OpenTransaction {
  callbacks: (() => void)[];
  ended: boolean;
  savepoints: number;
}

/** Where an async context stands: in which transaction, at which savepoint level (siblings there take turns). */
interface Level<T extends OpenTransaction> {
  transaction: T;
  turn: Promise<void>;
}

/** Where a dialect reports an afterCommit callback that threw (the server's log; stderr by default). */
export type CallbackErrorHandler = (err: Error) => void;

export const reportCallbackErrorToStderr: CallbackErrorHandler = (err) => {
  process.stderr.write(`an afterCommit callback failed (the others ran): ${err.stack ?? err.message}\n`);
};

/** The statements a dialect runs for a savepoint (awaited when they return a promise). */
export interface SavepointStatements {
  begin(name: string): unknown;
  release(name: string): unknown;
  /** Undoes the savepoint's work (the dialect knows whether the transaction is still there to undo it in). */
  rollback(name: string): unknown;
}

/**
 * The transaction of each async context (AsyncLocalStorage), shared by the dialects
 * (sqlite-sql.ts, postgres-sql.ts): nested transactions as savepoints, afterCommit callbacks.
 */
export class TransactionContext<T extends OpenTransaction> {
  private readonly context = new AsyncLocalStorage<Level<T>>();

  constructor(private readonly onCallbackError: CallbackErrorHandler = reportCallbackErrorToStderr) {}

  /** This context's transaction while it is open (work left running after its end has none). */
  open(): T | undefined {
    const transaction = this.context.getStore()?.transaction;
    return transaction && !transaction.ended ? transaction : undefined;
  }

  /** The transaction of this context, ended or not (SQLite compares it with its one open transaction). */
  mine(): T | undefined {
    return this.context.getStore()?.transaction;
  }

  run<R>(transaction: T, work: () => Promise<R>): Promise<R> {
    return this.context.run({ transaction, turn: Promise.resolve() }, work);
  }

  afterCommit(fn: () => void): void {
    const transaction = this.open();
    if (!transaction) return this.runCallback(fn);
    transaction.callbacks.push(fn);
  }

  /** After the commit: the callbacks, in order. */
  committed(transaction: T): void {
    for (const callback of transaction.callbacks) this.runCallback(callback);
  }

  /**
   * One callback, its throw reported and swallowed: the change is committed, so its caller must
   * not fail (an audited route would answer 500 for an applied change), and the callbacks after it
   * (memory updates, acks of a log batch) must still run.
   */
  private runCallback(callback: () => void): void {
    try {
      callback();
    } catch (err) {
      this.onCallbackError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Work in a savepoint of this context's transaction; concurrent ones at the same level take turns (releasing one would release the other). */
  async savepoint<R>(statements: SavepointStatements, work: () => Promise<R>): Promise<R> {
    const level = this.context.getStore()!;
    const before = level.turn;
    let done!: () => void;
    level.turn = new Promise((resolve) => (done = resolve));
    await before;
    const { transaction } = level;
    const name = `dvic_sp${++transaction.savepoints}`;
    const queued = transaction.callbacks.length;
    try {
      await statements.begin(name);
      try {
        const result = await this.run(transaction, work);
        await statements.release(name);
        return result;
      } catch (err) {
        await statements.rollback(name);
        transaction.callbacks.length = queued;
        throw err;
      }
    } finally {
      done();
    }
  }
}
