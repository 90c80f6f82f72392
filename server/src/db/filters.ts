/**
 * Builds a WHERE clause from optional filters: a filter whose value is undefined is left out.
 * Values always go through named parameters, never into the SQL text.
 */
export class Filters {
  private readonly clauses: string[] = [];
  readonly params: Record<string, unknown>;

  constructor(params: Record<string, unknown> = {}) {
    this.params = { ...params };
  }

  /** Adds `clause` (which uses @name) when value is defined. */
  add(clause: string, name: string, value: unknown): this {
    if (value === undefined) return this;
    this.clauses.push(clause);
    this.params[name] = value;
    return this;
  }

  /** Adds a clause with several parameters, all defined. */
  addAll(clause: string, values: Record<string, unknown>): this {
    this.clauses.push(clause);
    Object.assign(this.params, values);
    return this;
  }

  get sql(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}
