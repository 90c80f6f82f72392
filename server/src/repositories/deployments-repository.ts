import type { DeploymentView } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import { afterCommit } from '../db/transaction.js';

/** Deployments as their views. */
export class DeploymentsRepository {
  constructor(private readonly db: Db) {}

  save(view: DeploymentView): void {
    this.db.prepare('INSERT INTO deployments (id, view, created_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET view = excluded.view')
      .run(view.id, JSON.stringify(view), view.created_at);
  }

  get(id: string): DeploymentView | undefined {
    const row = this.db.prepare('SELECT view FROM deployments WHERE id = ?').get(id) as { view: string } | undefined;
    return row ? (JSON.parse(row.view) as DeploymentView) : undefined;
  }

  /** Newest first. */
  list(limit: number): DeploymentView[] {
    return (this.db.prepare('SELECT view FROM deployments ORDER BY created_at DESC, id LIMIT ?').all(limit) as { view: string }[])
      .map((r) => JSON.parse(r.view) as DeploymentView);
  }

  /** Deployments a server restart interrupted. */
  unfinished(): DeploymentView[] {
    return (this.db.prepare("SELECT view FROM deployments WHERE json_extract(view, '$.state') IN ('running', 'paused', 'rolling_back')").all() as { view: string }[])
      .map((r) => JSON.parse(r.view) as DeploymentView);
  }

  /** Whether a deployment still running uses this artifact (it cannot be deleted then). */
  artifactInUse(artifactId: string): boolean {
    return this.db.prepare("SELECT 1 FROM deployments WHERE json_extract(view, '$.artifact.id') = ? AND json_extract(view, '$.state') IN ('running', 'paused', 'rolling_back') LIMIT 1")
      .get(artifactId) !== undefined;
  }

  afterCommit(fn: () => void): void {
    afterCommit(this.db, fn);
  }
}
