import type { DeploymentView } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import { ViewTable } from './view-table.js';

/** Deployments as their views. */
export class DeploymentsRepository extends ViewTable<DeploymentView> {
  constructor(db: Db) {
    super(db, 'deployments', ['running', 'paused', 'rolling_back']);
  }

  /** Whether a deployment still running uses this artifact (it cannot be deleted then). */
  artifactInUse(artifactId: string): boolean {
    return this.db.prepare("SELECT 1 FROM deployments WHERE json_extract(view, '$.artifact.id') = ? AND json_extract(view, '$.state') IN (SELECT value FROM json_each(?)) LIMIT 1")
      .get(artifactId, JSON.stringify(this.activeStates)) !== undefined;
  }
}
