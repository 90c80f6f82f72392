import { LOG_LEVELS, type LogRecordView } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import { Filters } from '../db/filters.js';
import { SEARCH_SCHEMA } from '../db/log-search-index.js';
import { indexTerms, parseTextQuery } from '../search/text-query.js';


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
export type StoredLog = LogRecordView;

export interface LogQuery {
  nodeId?: string;
  demo?: string;
  source?: 'demo' | 'system';
  minLevel?: number;
  /** Search text (search/text-query.ts). */
  q?: string;
  /** Structured fields the record must have, with these values (`field.camera=usb-0`). */
  fields?: Record<string, string>;
  since?: number;
  until?: number;
  limit: number;
  /** Continue after this (ts, id): the last record of the previous page. */
  before?: { ts: number; id: number };
  /** Records after this id instead, oldest first (following: the live tail's replay). */
  afterId?: number;
}

interface Row { id: number; node_id: string; source: 'demo' | 'system'; demo: string | null; token: string | null; ts: number; level: number; message: string; fields: string | null }

const toStored = (r: Row): StoredLog => ({
  id: r.id, node_id: r.node_id, source: r.source, demo: r.demo, token: r.token, ts: r.ts,
  level: LOG_LEVELS[r.level] ?? 'INFO', message: r.message, fields: r.fields === null ? null : (JSON.parse(r.fields) as Record<string, unknown>),
});

/**
 * Matches of a parsed query: the full-text index narrows the candidates (every word as a prefix
 * term: a superset), records it has not reached yet are all candidates, and dvic_match (the one
 * matcher, search/text-query.ts) decides.
 */
function textCondition(): string {
  return `r.id IN (
    SELECT rowid FROM ${SEARCH_SCHEMA}.log_fts WHERE log_fts MATCH @fts
    UNION ALL
    SELECT id FROM log_records WHERE id > (SELECT indexed_up_to FROM ${SEARCH_SCHEMA}.index_state))
    AND dvic_match(@q, r.message)`;
}

export class LogsRepository {
  private readonly insert;
  /** Approximate bytes of the stored records (message, fields and a per-row overhead), kept by every write here. */
  storedBytes: number;

  constructor(private readonly db: Db) {
    // Positional parameters and lastInsertRowid rather than named ones and RETURNING: a quarter
    // less time per row, and this runs for every log line.
    this.insert = db.prepare(`
      INSERT INTO log_records (node_id, source, stream, offset, demo, token, ts, level, message, fields, size)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`);
    this.storedBytes = this.sumBytes();
  }

  /** Inserts records not stored yet (call inside a transaction); returns the new ones. */
  insertNew(records: NewLogRecord[]): StoredLog[] {
    const stored: StoredLog[] = [];
    let bytes = 0;
    for (const r of records) {
      const fields = r.fields && Object.keys(r.fields).length ? r.fields : null;
      const fieldsJson = fields && JSON.stringify(fields);
      const size = r.message.length + (fieldsJson?.length ?? 0) + 64;
      const result = this.insert.run(r.nodeId, r.source, r.stream, r.offset, r.demo, r.token, r.ts, r.level, r.message, fieldsJson, size);
      if (result.changes === 0) continue; // stored before: a batch sent again
      bytes += size;
      stored.push({
        id: Number(result.lastInsertRowid), node_id: r.nodeId, source: r.source, demo: r.demo, token: r.token, ts: r.ts,
        level: LOG_LEVELS[r.level] ?? 'INFO', message: r.message, fields,
      });
    }
    this.storedBytes += bytes;
    return stored;
  }

  /** Newest first (or after an id, oldest first); one more row than asked tells whether another page exists. */
  search(query: LogQuery): { records: StoredLog[]; more: boolean } {
    const filters = new Filters({ limit: query.limit + 1 })
      .add('r.node_id = @nodeId', 'nodeId', query.nodeId)
      .add('r.demo = @demo', 'demo', query.demo)
      .add('r.source = @source', 'source', query.source)
      .add('r.level >= @minLevel', 'minLevel', query.minLevel)
      .add('r.ts >= @since', 'since', query.since)
      .add('r.ts < @until', 'until', query.until);
    Object.entries(query.fields ?? {}).forEach(([name, value], i) => {
      // Text as it is; numbers by value; true, false and null by their JSON type's name.
      filters.addAll(`(json_type(r.fields, @fieldPath${i}) = 'text' AND json_extract(r.fields, @fieldPath${i}) = @fieldValue${i}
        OR json_type(r.fields, @fieldPath${i}) IN ('integer', 'real') AND json_extract(r.fields, @fieldPath${i}) = @fieldNumber${i}
        OR json_type(r.fields, @fieldPath${i}) = @fieldValue${i} AND @fieldValue${i} IN ('true', 'false', 'null'))`,
      { [`fieldPath${i}`]: `$."${name}"`, [`fieldValue${i}`]: value, [`fieldNumber${i}`]: value.trim() === '' || Number.isNaN(Number(value)) ? null : Number(value) });
    });
    const text = query.q ? parseTextQuery(query.q) : null;
    if (text) filters.addAll(textCondition(), { q: query.q, fts: indexTerms(text) });
    if (query.before) {
      filters.addAll('(r.ts < @beforeTs OR (r.ts = @beforeTs AND r.id < @beforeId))', { beforeTs: query.before.ts, beforeId: query.before.id });
    }
    filters.add('r.id > @afterId', 'afterId', query.afterId);
    const order = query.afterId === undefined ? 'r.ts DESC, r.id DESC' : 'r.id';
    const rows = this.db.prepare(`
      SELECT r.id, r.node_id, r.source, r.demo, r.token, r.ts, r.level, r.message, r.fields FROM log_records r
      ${filters.sql} ORDER BY ${order} LIMIT @limit`).all(filters.params) as Row[];
    const more = rows.length > query.limit;
    return { records: rows.slice(0, query.limit).map(toStored), more };
  }

  /** The newest record's id (0 when there is none). */
  maxId(): number {
    return (this.db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM log_records').get() as { id: number }).id;
  }

  /** Counts the stored bytes again, after a rolled-back write. */
  recountBytes(): void {
    this.storedBytes = this.sumBytes();
  }

  private sumBytes(): number {
    return (this.db.prepare('SELECT COALESCE(SUM(size), 0) AS n FROM log_records').get() as { n: number }).n;
  }

  /** Deletes up to `limit` of the oldest records older than `ts`. */
  deleteOlderThan(ts: number, limit: number): Deleted {
    return this.deleteWhere('ts < @ts', { ts, limit });
  }

  /**
   * Deletes the oldest records until their bytes add up to `bytes` (at most maxRows), in one
   * transaction: each page changes once in the WAL, not once per chunk.
   */
  deleteOldestBytes(bytes: number, maxRows = 100_000): Deleted {
    return this.db.transaction(() => {
      const deleted: Deleted = { ids: [], bytes: 0 };
      while (deleted.bytes < bytes && deleted.ids.length < maxRows) {
        const chunk = this.deleteWhere('1', { limit: 1000 });
        if (chunk.ids.length === 0) break;
        for (const id of chunk.ids) deleted.ids.push(id);
        deleted.bytes += chunk.bytes;
      }
      return deleted;
    })();
  }

  // The newest record always stays: record ids then never go back, and the search index, which
  // follows ids, never skips a record.
  private deleteWhere(condition: string, params: Record<string, unknown>): Deleted {
    const rows = this.db.prepare(`
      DELETE FROM log_records WHERE id IN (
        SELECT id FROM log_records WHERE ${condition} AND id < (SELECT MAX(id) FROM log_records) ORDER BY ts, id LIMIT @limit)
      RETURNING id, size`).all(params) as { id: number; size: number }[];
    const bytes = rows.reduce((sum, r) => sum + r.size, 0);
    this.storedBytes -= bytes;
    return { ids: rows.map((r) => r.id), bytes };
  }
}

export interface Deleted {
  ids: number[];
  bytes: number;
}
