import type { AuditEntryView } from '@dvic/protocol';
import type { Sql, SqlValue } from '../db/sql.js';
import { firstMatching } from '../db/text-match.js';
import { Where } from '../db/where.js';
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

const INSERT = `INSERT INTO audit_log (at, user_id, username, source_ip, action, target, outcome, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;

/** What q is matched against: the action, target and details, as one text. */
const SEARCHED_TEXT = "action || ' ' || COALESCE(target, '') || ' ' || COALESCE(details, '')";
const searchedText = (r: Row) => `${r.action} ${r.target ?? ''} ${r.details ?? ''}`;

const toEntry = (r: Row): AuditEntry => ({ ...r, details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>) });

/**
 * The audit trail. There is no update or delete here, and the database refuses both. An entry of
 * something that already happened waits in memory, in order, with its time, while the disk
 * refuses it; the entry of a change about to be made is written first or the change is refused.
 */
export class AuditRepository {
  constructor(private readonly sql: Sql, private readonly deferred: WriteScheduler = writeNow) {}

  /** Appends an entry now; rejects when the disk refuses it (an audited change must then not happen). */
  async append(entry: NewAuditEntry): Promise<void> {
    await this.sql.run(INSERT, this.row(entry));
  }

  /**
   * Appends an entry of something that already happened: now, or once the disk has room. Resolves
   * when it is stored or waits; rejects only for an error that is not the disk's.
   */
  async appendLater(entry: NewAuditEntry): Promise<void> {
    const row = this.row(entry);
    await this.deferred.run(this.deferred.uniqueKey('audit'), () => this.sql.run(INSERT, row));
  }

  private row(entry: NewAuditEntry): SqlValue[] {
    return [entry.at ?? Date.now(), entry.user_id, entry.username, entry.source_ip, entry.action, entry.target, entry.outcome,
      entry.details ? JSON.stringify(entry.details) : null];
  }

  /** Newest first; one more row than asked tells whether another page exists. */
  async search(query: AuditQuery): Promise<{ entries: AuditEntry[]; more: boolean }> {
    const where = new Where()
      .add('username = ?', query.username)
      .add('action = ?', query.action)
      .add('target = ?', query.target)
      .add('outcome = ?', query.outcome)
      .add('id < ?', query.beforeId);
    const rows = query.q !== undefined && this.sql.dialect === 'postgres'
      ? await firstMatching(query.q, query.limit + 1, searchedText, (after, n) => this.page(after ? where.copy().add('id < ?', after.id) : where, n))
      : await this.page(where.add(`dvic_match(?, ${SEARCHED_TEXT})`, query.q), query.limit + 1);
    return { entries: rows.slice(0, query.limit).map(toEntry), more: rows.length > query.limit };
  }

  private page(where: Where, limit: number): Promise<Row[]> {
    return this.sql.all<Row>(`SELECT * FROM audit_log ${where.sql} ORDER BY id DESC LIMIT ?`, [...where.params, limit]);
  }
}
