import type { SqlValue } from './sql.js';

/**
 * Builds a WHERE clause from optional filters for the async `Sql` layer (positional `?`): a filter
 * whose value is undefined is left out. Values always go through parameters, never into the SQL text.
 */
export class SqlFilters {
  private readonly clauses: string[] = [];
  readonly params: SqlValue[] = [];

  /** Adds `clause` (with one `?`) when value is defined. */
  add(clause: string, value: SqlValue | undefined): this {
    if (value === undefined) return this;
    return this.addAll(clause, value);
  }

  /** Adds a clause with its parameters, in the order of its `?`s. */
  addAll(clause: string, ...values: SqlValue[]): this {
    this.clauses.push(clause);
    this.params.push(...values);
    return this;
  }

  get sql(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}
