import type { AuditEntryView } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import { Filters } from '../db/filters.js';

export type AuditEntry = AuditEntryView;

export type NewAuditEntry = Omit<AuditEntry, 'id' | 'at'> & { at?: number };

export interface AuditQuery {
  username?: string;
  action?: string;
  target?: string;
  outcome?: string;
  /** Search text (search/text-query.ts) in the action, target and details. */
  q?: string;
  limit: number;
  beforeId?: number;
}

type Row = Omit<AuditEntry, 'details'> & { details: string | null };

/** The audit trail. There is no update or delete here, and the database refuses both. */
export class AuditRepository {
  private readonly insert;

  constructor(private readonly db: Db) {
    this.insert = db.prepare(`
      INSERT INTO audit_log (at, user_id, username, source_ip, action, target, outcome, details)
      VALUES (@at, @user_id, @username, @source_ip, @action, @target, @outcome, @details) RETURNING id`);
  }

  append(entry: NewAuditEntry): AuditEntry {
    const at = entry.at ?? Date.now();
    const row = this.insert.get({ ...entry, at, details: entry.details && JSON.stringify(entry.details) }) as { id: number };
    return { ...entry, at, id: row.id };
  }

  /** Newest first; one more row than asked tells whether another page exists. */
  search(query: AuditQuery): { entries: AuditEntry[]; more: boolean } {
    const filters = new Filters({ limit: query.limit + 1 })
      .add('username = @username', 'username', query.username)
      .add('action = @action', 'action', query.action)
      .add('target = @target', 'target', query.target)
      .add('outcome = @outcome', 'outcome', query.outcome)
      .add("dvic_match(@q, action || ' ' || COALESCE(target, '') || ' ' || COALESCE(details, ''))", 'q', query.q)
      .add('id < @beforeId', 'beforeId', query.beforeId);
    const rows = this.db.prepare(`SELECT * FROM audit_log ${filters.sql} ORDER BY id DESC LIMIT @limit`).all(filters.params) as Row[];
    return {
      entries: rows.slice(0, query.limit).map((r) => ({ ...r, details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>) })),
      more: rows.length > query.limit,
    };
  }
}
