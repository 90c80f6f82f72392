import type { AgentUpdateView } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import { afterCommit } from '../db/transaction.js';

/** Agent update rollouts as their views. */
export class AgentUpdatesRepository {
  constructor(private readonly db: Db) {}

  afterCommit(fn: () => void): void {
    afterCommit(this.db, fn);
  }

  save(view: AgentUpdateView): void {
    this.db.prepare('INSERT INTO agent_updates (id, view, created_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET view = excluded.view')
      .run(view.id, JSON.stringify(view), view.created_at);
  }

  get(id: string): AgentUpdateView | undefined {
    const row = this.db.prepare('SELECT view FROM agent_updates WHERE id = ?').get(id) as { view: string } | undefined;
    return row ? (JSON.parse(row.view) as AgentUpdateView) : undefined;
  }

  /** Newest first. */
  list(limit: number): AgentUpdateView[] {
    return (this.db.prepare('SELECT view FROM agent_updates ORDER BY created_at DESC, rowid DESC LIMIT ?').all(limit) as { view: string }[])
      .map((r) => JSON.parse(r.view) as AgentUpdateView);
  }

  /** Updates a server restart interrupted (their rollout lived in the old process). */
  unfinished(): AgentUpdateView[] {
    return (this.db.prepare("SELECT view FROM agent_updates WHERE json_extract(view, '$.state') IN ('running', 'paused')").all() as { view: string }[])
      .map((r) => JSON.parse(r.view) as AgentUpdateView);
  }
}
