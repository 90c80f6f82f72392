import type { AgentUpdateView, DeploymentView } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';

/** The rollouts kept as views: their shapes come from protocol/schemas/api. */
type RolloutView = AgentUpdateView | DeploymentView;

/**
 * A table of rollouts (agent updates, deployments) kept as their whole JSON views: the view is
 * what the API answers and what a restarted server needs to end what it interrupted.
 * The table has id, view and created_at columns.
 */
export class ViewTable<View extends RolloutView> {
  constructor(
    protected readonly sql: Sql,
    private readonly table: string,
    /** States of a rollout still under way, which a server restart interrupts. */
    protected readonly activeStates: readonly View['state'][],
  ) {}

  afterCommit(fn: () => void): void {
    this.sql.afterCommit(fn);
  }

  async save(view: View): Promise<void> {
    await this.sql.run(`INSERT INTO ${this.table} (id, view, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET view = excluded.view`,
      [view.id, JSON.stringify(view), view.created_at]);
  }

  async get(id: string): Promise<View | undefined> {
    const row = await this.sql.get<{ view: string }>(`SELECT view FROM ${this.table} WHERE id = ?`, [id]);
    return row ? (JSON.parse(row.view) as View) : undefined;
  }

  /** Newest first (those of the same millisecond in a stable order). */
  async list(limit: number): Promise<View[]> {
    return this.views(`SELECT view FROM ${this.table} ORDER BY created_at DESC, id DESC LIMIT ?`, [limit]);
  }

  /** Rollouts a server restart interrupted (they lived in the old process). */
  async unfinished(): Promise<View[]> {
    // The state lives in the JSON view: read with each dialect's own JSON operator.
    const state = this.sql.dialect === 'postgres' ? "(view::jsonb ->> 'state')" : "json_extract(view, '$.state')";
    return this.views(`SELECT view FROM ${this.table} WHERE ${state} IN (${this.activeStates.map(() => '?').join(', ')})`, [...this.activeStates]);
  }

  private async views(text: string, params: string[] | number[]): Promise<View[]> {
    return (await this.sql.all<{ view: string }>(text, params)).map((r) => JSON.parse(r.view) as View);
  }
}
