import type { SqlValue } from './sql.js';

/**
 * Builds a WHERE clause from optional filters for the async `Sql` (positional `?` parameters): a
 * filter whose value is undefined is left out. Values always go through parameters, never into the
 * SQL text.
 */
export class Where {
  private readonly clauses: string[] = [];
  readonly params: SqlValue[] = [];

  /** Adds `clause` (with one `?` per value) when the first value is defined. */
  add(clause: string, ...values: [SqlValue | undefined, ...SqlValue[]]): this {
    if (values[0] === undefined) return this;
    this.clauses.push(clause);
    this.params.push(...(values as SqlValue[]));
    return this;
  }

  /** Adds a clause with its parameters (in the order of its `?`s), whatever their values. */
  addAll(clause: string, ...values: SqlValue[]): this {
    this.clauses.push(clause);
    this.params.push(...values);
    return this;
  }

  /** Another builder with the same clauses, to add to without changing this one. */
  copy(): Where {
    const copy = new Where();
    copy.clauses.push(...this.clauses);
    copy.params.push(...this.params);
    return copy;
  }

  get sql(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}
