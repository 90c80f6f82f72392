import type { Db } from '../db/database.js';
import { Filters } from '../db/filters.js';
import type { DeferredWrites } from '../services/deferred-writes.js';

export interface AuditEntry {
  id: number;
  at: number;
  user_id: number | null;
  username: string | null;
  source_ip: string | null;
  action: string;
  target: string | null;
  outcome: 'ok' | 'denied' | 'failed';
  details: Record<string, unknown> | null;
}

export type NewAuditEntry = Omit<AuditEntry, 'id' | 'at'> & { at?: number };

export interface AuditQuery {
  username?: string;
  action?: string;
  target?: string;
  outcome?: string;
  /** Substring of action, target or details. */
  q?: string;
  limit: number;
  beforeId?: number;
}

type Row = Omit<AuditEntry, 'details'> & { details: string | null };

/**
 * The audit trail. There is no update or delete here, and the database refuses both. An entry the
 * disk refuses waits in memory, in order, with the time it happened, until the database has room.
 */
export class AuditRepository {
  private readonly insert;

  constructor(private readonly db: Db, private readonly deferred: DeferredWrites) {
    this.insert = db.prepare(`
      INSERT INTO audit_log (at, user_id, username, source_ip, action, target, outcome, details)
      VALUES (@at, @user_id, @username, @source_ip, @action, @target, @outcome, @details)`);
  }

  append(entry: NewAuditEntry): void {
    const row = { ...entry, at: entry.at ?? Date.now(), details: entry.details && JSON.stringify(entry.details) };
    this.deferred.run(this.deferred.uniqueKey('audit'), () => this.insert.run(row));
  }

  /** Newest first; one more row than asked tells whether another page exists. */
  search(query: AuditQuery): { entries: AuditEntry[]; more: boolean } {
    const filters = new Filters({ limit: query.limit + 1 })
      .add('username = @username', 'username', query.username)
      .add('action = @action', 'action', query.action)
      .add('target = @target', 'target', query.target)
      .add('outcome = @outcome', 'outcome', query.outcome)
      .add("(instr(action, @q) OR instr(COALESCE(target, ''), @q) OR instr(COALESCE(details, ''), @q))", 'q', query.q)
      .add('id < @beforeId', 'beforeId', query.beforeId);
    const rows = this.db.prepare(`SELECT * FROM audit_log ${filters.sql} ORDER BY id DESC LIMIT @limit`).all(filters.params) as Row[];
    return {
      entries: rows.slice(0, query.limit).map((r) => ({ ...r, details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>) })),
      more: rows.length > query.limit,
    };
  }
}
