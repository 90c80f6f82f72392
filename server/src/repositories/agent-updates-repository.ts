import type { AgentUpdateView } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import { ViewTable } from './view-table.js';

/** Agent update rollouts as their views. */
export class AgentUpdatesRepository extends ViewTable<AgentUpdateView> {
  constructor(db: Db) {
    super(db, 'agent_updates', ['running', 'paused']);
  }
}
