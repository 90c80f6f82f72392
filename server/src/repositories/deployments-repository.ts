import type { DeploymentView } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';
import { ViewTable } from './view-table.js';

/** Deployments as their views. */
export class DeploymentsRepository extends ViewTable<DeploymentView> {
  constructor(sql: Sql, owner = '') {
    super(sql, 'deployments', ['running', 'paused', 'rolling_back'], owner);
  }
}
