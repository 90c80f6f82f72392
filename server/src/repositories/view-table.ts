import type { AgentUpdateView, DeploymentView } from '@dvic/protocol';
import type { Sql, SqlValue } from '../db/sql.js';
import { Where } from '../db/where.js';

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
    /** The replica whose process runs the rollouts this one inserts (docs/scale-out.md). */
    private readonly owner = '',
  ) {}

  afterCommit(fn: () => void): void {
    this.sql.afterCommit(fn);
  }

  /** Inserts or updates the view; the owner is the inserting replica's and stays. */
  async save(view: View): Promise<void> {
    await this.sql.run(`INSERT INTO ${this.table} (id, view, created_at, owner_replica) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET view = excluded.view`,
      [view.id, JSON.stringify(view), view.created_at, this.owner]);
  }

  async get(id: string): Promise<View | undefined> {
    const row = await this.sql.get<{ view: string }>(`SELECT view FROM ${this.table} WHERE id = ?`, [id]);
    return row ? (JSON.parse(row.view) as View) : undefined;
  }

  /** Newest first (those of the same millisecond in a stable order). */
  async list(limit: number): Promise<View[]> {
    return this.views(`SELECT view FROM ${this.table} ORDER BY created_at DESC, id DESC LIMIT ?`, [limit]);
  }

  /** Rollouts a server restart interrupted (they lived in the old process), of one owner or of all. */
  async unfinished(owner?: string): Promise<View[]> {
    const where = this.unfinishedWhere().add('owner_replica = ?', owner);
    return this.views(`SELECT view FROM ${this.table} ${where.sql}`, where.params);
  }

  /** The replicas that own rollouts under way. */
  async unfinishedOwners(): Promise<string[]> {
    const where = this.unfinishedWhere();
    return (await this.sql.all<{ owner_replica: string }>(`SELECT DISTINCT owner_replica FROM ${this.table} ${where.sql}`, where.params)).map((r) => r.owner_replica);
  }

  private unfinishedWhere(): Where {
    // The state lives in the JSON view: read with each dialect's own JSON operator.
    // The states as literals (constants of the code, never input): the partial index of migration
    // 0017 serves only a WHERE that visibly implies its own.
    const state = this.sql.dialect === 'postgres' ? "(view::jsonb ->> 'state')" : "json_extract(view, '$.state')";
    return new Where().addAll(`${state} IN (${this.activeStates.map((s) => `'${s}'`).join(', ')})`);
  }

  private async views(text: string, params: SqlValue[]): Promise<View[]> {
    return (await this.sql.all<{ view: string }>(text, params)).map((r) => JSON.parse(r.view) as View);
  }
}
