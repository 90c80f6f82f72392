import type { AgentUpdateView } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';
import { ViewTable } from './view-table.js';

/** Agent update rollouts as their views. */
export class AgentUpdatesRepository extends ViewTable<AgentUpdateView> {
  constructor(sql: Sql, owner = '') {
    super(sql, 'agent_updates', ['running', 'paused'], owner);
  }
}
