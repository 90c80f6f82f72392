import type { AuditEntryView } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import { Filters } from '../db/filters.js';
import { writeNow, type WriteScheduler } from '../services/deferred-writes.js';

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

/**
 * The audit trail. There is no update or delete here, and the database refuses both. An entry of
 * something that already happened waits in memory, in order, with its time, while the disk
 * refuses it; the entry of a change about to be made is written first or the change is refused.
 */
export class AuditRepository {
  private readonly insert;

  constructor(private readonly db: Db, private readonly deferred: WriteScheduler = writeNow) {
    this.insert = db.prepare(`
      INSERT INTO audit_log (at, user_id, username, source_ip, action, target, outcome, details)
      VALUES (@at, @user_id, @username, @source_ip, @action, @target, @outcome, @details)`);
  }

  /** Appends an entry now; throws when the disk refuses it (an audited change must then not happen). */
  append(entry: NewAuditEntry): void {
    this.insert.run(this.row(entry));
  }

  /** Appends an entry of something that already happened: now, or once the disk has room. */
  appendLater(entry: NewAuditEntry): void {
    const row = this.row(entry);
    this.deferred.run(this.deferred.uniqueKey('audit'), () => this.insert.run(row));
  }

  private row(entry: NewAuditEntry) {
    return { ...entry, at: entry.at ?? Date.now(), details: entry.details && JSON.stringify(entry.details) };
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
