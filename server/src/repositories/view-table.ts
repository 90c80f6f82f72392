import type { AgentUpdateView, DeploymentView } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import { afterCommit } from '../db/transaction.js';

/** The rollouts kept as views: their shapes come from protocol/schemas/api. */
type RolloutView = AgentUpdateView | DeploymentView;

/**
 * A table of rollouts (agent updates, deployments) kept as their whole JSON views: the view is
 * what the API answers and what a restarted server needs to end what it interrupted.
 * The table has id, view and created_at columns.
 */
export class ViewTable<View extends RolloutView> {
  constructor(
    protected readonly db: Db,
    private readonly table: string,
    /** States of a rollout still under way, which a server restart interrupts. */
    protected readonly activeStates: readonly View['state'][],
  ) {}

  afterCommit(fn: () => void): void {
    afterCommit(this.db, fn);
  }

  save(view: View): void {
    this.db.prepare(`INSERT INTO ${this.table} (id, view, created_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET view = excluded.view`)
      .run(view.id, JSON.stringify(view), view.created_at);
  }

  get(id: string): View | undefined {
    const row = this.db.prepare(`SELECT view FROM ${this.table} WHERE id = ?`).get(id) as { view: string } | undefined;
    return row ? (JSON.parse(row.view) as View) : undefined;
  }

  /** Newest first. */
  list(limit: number): View[] {
    return this.views(`SELECT view FROM ${this.table} ORDER BY created_at DESC, rowid DESC LIMIT ?`, limit);
  }

  /** Rollouts a server restart interrupted (they lived in the old process). */
  unfinished(): View[] {
    return this.views(`SELECT view FROM ${this.table} WHERE json_extract(view, '$.state') IN (SELECT value FROM json_each(?))`, JSON.stringify(this.activeStates));
  }

  private views(sql: string, ...params: unknown[]): View[] {
    return (this.db.prepare(sql).all(...params) as { view: string }[]).map((r) => JSON.parse(r.view) as View);
  }
}
