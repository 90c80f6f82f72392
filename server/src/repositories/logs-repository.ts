import type { Db } from '../db/database.js';
import { Filters } from '../db/filters.js';

export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const levelNumber = (level: string): number => Math.max(0, LOG_LEVELS.indexOf(level as LogLevel));
export const ERROR_LEVEL = levelNumber('ERROR');

/** A record ready to store. (nodeId, stream, offset) identifies it in its source. */
export interface NewLogRecord {
  nodeId: string;
  source: 'demo' | 'system';
  stream: string;
  offset: number | null;
  demo: string | null;
  token: string | null;
  ts: number;
  level: number;
  message: string;
  fields: Record<string, unknown> | null;
}

/** A record as the API and the live tail show it. */
export interface StoredLog {
  id: number;
  node_id: string;
  source: 'demo' | 'system';
  demo: string | null;
  token: string | null;
  ts: number;
  level: LogLevel;
  message: string;
  fields: Record<string, unknown> | null;
}

export interface LogQuery {
  nodeId?: string;
  demo?: string;
  source?: 'demo' | 'system';
  minLevel?: number;
  /** Free text: every word must appear (prefix match). */
  q?: string;
  since?: number;
  until?: number;
  limit: number;
  /** Continue after this (ts, id): the last record of the previous page. */
  before?: { ts: number; id: number };
}

interface Row { id: number; node_id: string; source: 'demo' | 'system'; demo: string | null; token: string | null; ts: number; level: number; message: string; fields: string | null }

const toStored = (r: Row): StoredLog => ({
  id: r.id, node_id: r.node_id, source: r.source, demo: r.demo, token: r.token, ts: r.ts,
  level: LOG_LEVELS[r.level] ?? 'INFO', message: r.message, fields: r.fields === null ? null : (JSON.parse(r.fields) as Record<string, unknown>),
});

/**
 * Turns what a user types into an FTS5 query that cannot be a syntax error: each word becomes
 * a quoted prefix term, all of them required. Returns null when there is no word to look for.
 */
export function ftsQuery(text: string): string | null {
  const words = text.match(/[\p{L}\p{N}_]+/gu);
  if (!words) return null;
  return words.slice(0, 16).map((w) => `"${w}"*`).join(' ');
}

export class LogsRepository {
  private readonly insert;

  constructor(private readonly db: Db) {
    this.insert = db.prepare(`
      INSERT INTO log_records (node_id, source, stream, offset, demo, token, ts, level, message, fields, size)
      VALUES (@nodeId, @source, @stream, @offset, @demo, @token, @ts, @level, @message, @fields, @size)
      ON CONFLICT DO NOTHING RETURNING id`);
  }

  /** Inserts records not stored yet (call inside a transaction); returns the new ones with their bytes. */
  insertNew(records: NewLogRecord[]): { stored: StoredLog[]; bytes: number } {
    const stored: StoredLog[] = [];
    let bytes = 0;
    for (const r of records) {
      const fields = r.fields && Object.keys(r.fields).length ? JSON.stringify(r.fields) : null;
      const size = r.message.length + (fields?.length ?? 0) + 64;
      const row = this.insert.get({ ...r, fields, size }) as { id: number } | undefined;
      if (!row) continue;
      bytes += size;
      stored.push({
        id: row.id, node_id: r.nodeId, source: r.source, demo: r.demo, token: r.token, ts: r.ts,
        level: LOG_LEVELS[r.level] ?? 'INFO', message: r.message, fields: r.fields && Object.keys(r.fields).length ? r.fields : null,
      });
    }
    return { stored, bytes };
  }

  /** Newest first; one more row than asked tells whether another page exists. */
  search(query: LogQuery): { records: StoredLog[]; more: boolean } {
    const filters = new Filters({ limit: query.limit + 1 })
      .add('r.node_id = @nodeId', 'nodeId', query.nodeId)
      .add('r.demo = @demo', 'demo', query.demo)
      .add('r.source = @source', 'source', query.source)
      .add('r.level >= @minLevel', 'minLevel', query.minLevel)
      .add('r.ts >= @since', 'since', query.since)
      .add('r.ts < @until', 'until', query.until)
      .add('r.id IN (SELECT rowid FROM log_fts WHERE log_fts MATCH @q)', 'q', query.q ? ftsQuery(query.q) ?? undefined : undefined);
    if (query.before) {
      filters.addAll('(r.ts < @beforeTs OR (r.ts = @beforeTs AND r.id < @beforeId))', { beforeTs: query.before.ts, beforeId: query.before.id });
    }
    const rows = this.db.prepare(`
      SELECT r.id, r.node_id, r.source, r.demo, r.token, r.ts, r.level, r.message, r.fields FROM log_records r
      ${filters.sql} ORDER BY r.ts DESC, r.id DESC LIMIT @limit`).all(filters.params) as Row[];
    const more = rows.length > query.limit;
    return { records: rows.slice(0, query.limit).map(toStored), more };
  }

  totalBytes(): number {
    return (this.db.prepare('SELECT COALESCE(SUM(size), 0) AS n FROM log_records').get() as { n: number }).n;
  }

  /** Deletes up to `limit` of the oldest records older than `ts`; returns their count and bytes. */
  deleteOlderThan(ts: number, limit: number): { count: number; bytes: number } {
    return this.deleteWhere('ts < @ts', { ts, limit });
  }

  /** Deletes the `limit` oldest records. */
  deleteOldest(limit: number): { count: number; bytes: number } {
    return this.deleteWhere('1', { limit });
  }

  private deleteWhere(condition: string, params: Record<string, unknown>): { count: number; bytes: number } {
    const rows = this.db.prepare(`
      DELETE FROM log_records WHERE id IN (SELECT id FROM log_records WHERE ${condition} ORDER BY ts, id LIMIT @limit)
      RETURNING size`).all(params) as { size: number }[];
    return { count: rows.length, bytes: rows.reduce((sum, r) => sum + r.size, 0) };
  }
}
