import { LOG_LEVELS, type LogRecordView } from '@dvic/protocol';
import { SEARCH_SCHEMA } from '../db/log-search-index.js';
import type { Sql, SqlValue } from '../db/sql.js';
import { Where } from '../db/where.js';
import { coarsenRanges, mergeRanges, paddedRanges, type IdRange } from '../search/id-ranges.js';
import { searchBlocks } from '../search/search-blocks.js';
import { indexTerms, parseTextQuery, searchWordList, termNeedles, tsQueryText, type TextQuery } from '../search/text-query.js';

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

export interface Deleted {
  ids: number[];
  bytes: number;
}

interface Row { id: number; node_id: string; source: 'demo' | 'system'; demo: string | null; token: string | null; ts: number; level: number; message: string; fields: string | null }

/** A record as it goes into the table, with what storing it adds. */
interface Prepared { record: NewLogRecord; fields: Record<string, unknown> | null; fieldsJson: string | null; size: number }

interface Inserted { id: number; node_id: string; stream: string; offset: number | null }

const toStored = (r: Row): StoredLog => ({
  id: r.id, node_id: r.node_id, source: r.source, demo: r.demo, token: r.token, ts: r.ts,
  level: LOG_LEVELS[r.level] ?? 'INFO', message: r.message, fields: r.fields === null ? null : (JSON.parse(r.fields) as Record<string, unknown>),
});

const COLUMNS = 'node_id, source, stream, "offset", demo, token, ts, level, message, fields, size';
const RETURNED = 'RETURNING id, node_id, stream, "offset"';
/** PostgreSQL: a search names at most this many id ranges (search/id-ranges.ts). */
const MAX_SEARCH_RANGES = 64;
/** PostgreSQL: past this many blocks with the query's words, a search reads newest first without ranges. */
const MAX_SEARCH_BLOCKS = 10_000;
/** PostgreSQL: ranges holding at most this many ids are read whole before ordering (a bounded read by primary key). */
const FEW_CANDIDATES = 200_000;
/** SQLite rows per INSERT: batches go in power-of-two slices, so few statement texts exist (each prepared once). */
const MAX_SQLITE_SLICE = 256;

/**
 * Log records on SQLite and PostgreSQL. Exactly once: (node_id, stream, offset) is unique and a
 * record stored before is skipped (ON CONFLICT DO NOTHING), so a batch sent again adds nothing.
 * Search is the one meaning of `q` (search/text-query.ts): on SQLite the FTS5 index in its own
 * file narrows and dvic_match decides; on PostgreSQL the search blocks (a tsvector of each stored
 * batch's words, GIN-indexed) narrow and the stored words decide.
 */
export class LogsRepository {
  /** Approximate bytes of the stored records (message, fields and a per-row overhead), kept by every write here. */
  storedBytes = 0;

  private constructor(private readonly sql: Sql) {}

  static async open(sql: Sql): Promise<LogsRepository> {
    const logs = new LogsRepository(sql);
    await logs.recountBytes();
    return logs;
  }

  get dialect(): Sql['dialect'] {
    return this.sql.dialect;
  }

  /**
   * Inserts the records not stored yet and returns them, in order: one statement per batch on
   * PostgreSQL, a few on SQLite. Call inside a transaction when other writes must go with it.
   */
  async insertNew(records: NewLogRecord[]): Promise<StoredLog[]> {
    if (records.length === 0) return [];
    const prepared = (this.sql.dialect === 'postgres' ? records.map(storableInPostgres) : records).map(prepare);
    const inserted = this.sql.dialect === 'postgres' ? await this.insertPostgres(prepared) : await this.insertSqlite(prepared);
    const stored = matchInserted(prepared, inserted);
    this.storedBytes += stored.reduce((sum, [p]) => sum + p.size, 0);
    return stored.map(([p, id]) => ({
      id, node_id: p.record.nodeId, source: p.record.source, demo: p.record.demo, token: p.record.token, ts: p.record.ts,
      level: LOG_LEVELS[p.record.level] ?? 'INFO', message: p.record.message, fields: p.fields,
    }));
  }

  /** Newest first (or after an id, oldest first); one more row than asked tells whether another page exists. */
  async search(query: LogQuery): Promise<{ records: StoredLog[]; more: boolean }> {
    const filters = new Where()
      .add('r.node_id = ?', query.nodeId)
      .add('r.demo = ?', query.demo)
      .add('r.source = ?', query.source)
      .add('r.level >= ?', query.minLevel)
      .add('r.ts >= ?', query.since)
      .add('r.ts < ?', query.until);
    for (const [name, value] of Object.entries(query.fields ?? {})) this.addFieldFilter(filters, name, value);
    const text = query.q ? parseTextQuery(query.q) : null;
    const narrowed = text ? await this.addTextFilter(filters, query.q!, text) : 'wide';
    if (query.before) filters.addAll('(r.ts < ? OR (r.ts = ? AND r.id < ?))', query.before.ts, query.before.ts, query.before.id);
    filters.add('r.id > ?', query.afterId);
    const order = query.afterId === undefined ? 'r.ts DESC, r.id DESC' : 'r.id';
    const columns = 'r.id, r.node_id, r.source, r.demo, r.token, r.ts, r.level, r.message, r.fields';
    // A few candidates: read them all first (OFFSET 0 keeps the planner from scanning the whole
    // table newest first, hoping the few matches are near the top).
    const from = narrowed === 'few' ? `(SELECT ${columns} FROM log_records r ${filters.sql} OFFSET 0) r` : `log_records r ${filters.sql}`;
    const rows = await this.sql.all<Row>(`SELECT ${columns} FROM ${from} ORDER BY ${order} LIMIT ?`, [...filters.params, query.limit + 1]);
    const more = rows.length > query.limit;
    return { records: rows.slice(0, query.limit).map(toStored), more };
  }

  /** The newest record's id (0 when there is none). */
  async maxId(): Promise<number> {
    return (await this.sql.get<{ id: number }>('SELECT COALESCE(MAX(id), 0) AS id FROM log_records'))!.id;
  }

  /**
   * Counts the stored bytes again (after a rolled-back write; on PostgreSQL, other replicas write
   * too). A whole-table scan: unbounded, or a big table would stop retention and replica starts.
   */
  async recountBytes(): Promise<void> {
    const counted = await this.sql.unbounded(() => this.sql.get<{ n: number | string }>('SELECT COALESCE(SUM(size), 0) AS n FROM log_records'));
    this.storedBytes = Number(counted!.n);
  }

  /**
   * Before retention measures: other replicas write to PostgreSQL too, so the count is read again
   * there (on SQLite it is exact). True when it was read again.
   */
  async refreshStoredBytes(): Promise<boolean> {
    if (this.sql.dialect !== 'postgres') return false;
    await this.recountBytes();
    return true;
  }

  /** PostgreSQL: the log table's bytes on disk, with its indexes and TOAST. */
  async tableBytes(): Promise<number> {
    return Number((await this.sql.get<{ n: number | string }>("SELECT pg_total_relation_size('log_records') AS n"))!.n);
  }

  /** PostgreSQL: makes the room of deleted rows (records and their search blocks) reusable by new ones now (rather than at autovacuum's next pass). */
  async vacuum(): Promise<void> {
    await this.sql.unbounded(() => this.sql.run('VACUUM log_records, log_search_blocks'));
  }

  /** Deletes up to `limit` of the oldest records older than `ts`. */
  deleteOlderThan(ts: number, limit: number): Promise<Deleted> {
    return this.sql.unbounded(() => this.afterDeleting(this.deleteWhere('ts < ?', [ts], limit)));
  }

  /**
   * Deletes the oldest records until their bytes add up to `bytes` (at most maxRows), in one
   * transaction: on SQLite each page changes once in the WAL, not once per chunk.
   */
  deleteOldestBytes(bytes: number, maxRows = 100_000): Promise<Deleted> {
    return this.sql.unbounded(() => this.afterDeleting(this.sql.transaction(async () => {
      const deleted: Deleted = { ids: [], bytes: 0 };
      while (deleted.bytes < bytes && deleted.ids.length < maxRows) {
        const chunk = await this.deleteWhere('1 = 1', [], 1000);
        if (chunk.ids.length === 0) break;
        for (const id of chunk.ids) deleted.ids.push(id);
        deleted.bytes += chunk.bytes;
      }
      return deleted;
    })));
  }

  /**
   * PostgreSQL: once records are deleted, the search blocks up to the newest of them that no
   * longer hold any record go too. (Not only those before the oldest record left: retention
   * deletes by time, so one line of a node whose clock runs ahead would keep every block.)
   */
  private async afterDeleting(deleting: Promise<Deleted>): Promise<Deleted> {
    const deleted = await deleting;
    if (this.sql.dialect === 'postgres' && deleted.ids.length) {
      await this.sql.run(`
        DELETE FROM log_search_blocks b WHERE b.last_id <= ?
          AND NOT EXISTS (SELECT 1 FROM log_records r WHERE r.id BETWEEN b.first_id AND b.last_id)`, [deleted.ids.reduce((a, b) => Math.max(a, b))]);
    }
    return deleted;
  }

  // The newest record always stays: record ids then never go back, and the search index, which
  // follows ids, never skips a record.
  private async deleteWhere(condition: string, params: SqlValue[], limit: number): Promise<Deleted> {
    const rows = await this.sql.all<{ id: number; size: number }>(`
      DELETE FROM log_records WHERE id IN (
        SELECT id FROM log_records WHERE ${condition} AND id < (SELECT MAX(id) FROM log_records) ORDER BY ts, id LIMIT ?)
      RETURNING id, size`, [...params, limit]);
    const bytes = rows.reduce((sum, r) => sum + r.size, 0);
    this.storedBytes -= bytes;
    return { ids: rows.map((r) => r.id), bytes };
  }

  /** SQLite: multi-row INSERTs in power-of-two slices (a handful of cached statements serve every batch size). */
  private async insertSqlite(prepared: Prepared[]): Promise<Inserted[]> {
    const inserted: Inserted[] = [];
    for (let from = 0; from < prepared.length;) {
      let size = MAX_SQLITE_SLICE;
      while (size > prepared.length - from) size /= 2;
      const slice = prepared.slice(from, from + size);
      const rows = await this.sql.all<Inserted>(
        `INSERT INTO log_records (${COLUMNS}) VALUES ${Array(size).fill('(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')} ON CONFLICT DO NOTHING ${RETURNED}`,
        slice.flatMap((p) => columnValues(p)));
      for (const row of rows) inserted.push(row);
      from += size;
    }
    return inserted;
  }

  /**
   * PostgreSQL: each search block of the batch (search/search-blocks.ts; one, unless its lines are
   * many and long) in one statement, its rows one JSON parameter (one round trip, one plan,
   * whatever the batch size). The same statement stores the block's distinct words with the ids
   * its rows took, so a line is never stored without its words in the search index.
   */
  private async insertPostgres(prepared: Prepared[]): Promise<Inserted[]> {
    const words = prepared.map((p) => searchWordList(p.record.message));
    const inserted: Inserted[] = [];
    for (const block of searchBlocks(words)) {
      const rows = prepared.slice(block.from, block.to).map((p, i) => jsonRow(p, words[block.from + i]!.join(' ')));
      const params: SqlValue[] = [JSON.stringify(rows)];
      if (block.words !== '') params.push(block.words);
      for (const row of await this.sql.all<Inserted>(block.words === '' ? INSERT_JSON_ROWS : INSERT_ROWS_AND_BLOCK, params)) inserted.push(row);
    }
    return inserted;
  }

  /**
   * PostgreSQL: the id ranges of the blocks with every word of the query (at most MAX_SEARCH_RANGES,
   * search/id-ranges.ts), or null when its words are in so many blocks that reading the newest
   * records first finds its matches sooner.
   */
  private async searchBlockRanges(tsQuery: string): Promise<IdRange[] | null> {
    const blocks = await this.sql.all<{ first_id: number; last_id: number }>(
      'SELECT first_id, last_id FROM log_search_blocks WHERE words @@ CAST(? AS tsquery) LIMIT ?', [tsQuery, MAX_SEARCH_BLOCKS + 1]);
    if (blocks.length > MAX_SEARCH_BLOCKS) return null;
    return coarsenRanges(mergeRanges(blocks.map((b) => [b.first_id, b.last_id])), MAX_SEARCH_RANGES);
  }

  /** A structured field equal to the value: text as it is; numbers by value; true, false and null by their JSON type's name. */
  private addFieldFilter(filters: Where, name: string, value: string): void {
    const number = value.trim() === '' || Number.isNaN(Number(value)) ? null : Number(value);
    if (this.sql.dialect === 'postgres') {
      filters.addAll(`(jsonb_typeof(r.fields::jsonb -> ?) = 'string' AND r.fields::jsonb ->> ? = ?
        OR jsonb_typeof(r.fields::jsonb -> ?) = 'number' AND CAST(r.fields::jsonb ->> ? AS DOUBLE PRECISION) = CAST(? AS DOUBLE PRECISION)
        OR jsonb_typeof(r.fields::jsonb -> ?) IN ('boolean', 'null') AND CAST(r.fields::jsonb -> ? AS TEXT) = ?)`,
      name, name, value, name, name, number, name, name, value);
      return;
    }
    const path = `$."${name}"`;
    filters.addAll(`(json_type(r.fields, ?) = 'text' AND json_extract(r.fields, ?) = ?
      OR json_type(r.fields, ?) IN ('integer', 'real') AND json_extract(r.fields, ?) = ?
      OR json_type(r.fields, ?) = ? AND ? IN ('true', 'false', 'null'))`,
    path, path, value, path, path, number, path, value, value);
  }

  /**
   * SQLite: the full-text index narrows the candidates (every word as a prefix term: a superset),
   * records it has not reached yet are all candidates, and dvic_match (the one matcher) decides.
   * PostgreSQL: the tsquery of the query's words on the blocks' GIN index narrows to the records
   * of the blocks with every word, and each term's words, in a row, in the record's folded words
   * decide (exactly what the matcher does: search/text-query.ts). A block's id range may hold
   * another batch's records too (batches stored at the same time share the id sequence): they
   * are candidates only, and the exact test decides for them as well.
   */
  private async addTextFilter(filters: Where, q: string, text: TextQuery): Promise<'few' | 'wide'> {
    if (this.sql.dialect === 'sqlite') {
      filters.addAll(`r.id IN (
        SELECT rowid FROM ${SEARCH_SCHEMA}.log_fts WHERE log_fts MATCH ?
        UNION ALL
        SELECT id FROM log_records WHERE id > (SELECT indexed_up_to FROM ${SEARCH_SCHEMA}.index_state))
        AND dvic_match(?, r.message)`, indexTerms(text), q);
      return 'wide';
    }
    const ranges = await this.searchBlockRanges(tsQueryText(text));
    if (ranges) {
      const named = paddedRanges(ranges);
      filters.addAll(`(${named.map(() => 'r.id BETWEEN ? AND ?').join(' OR ')})`, ...named.flat());
    }
    for (const needle of termNeedles(text)) filters.addAll("strpos(' ' || r.search_words, ?) > 0", needle);
    return ranges && ranges.reduce((ids, [first, last]) => ids + last - first + 1, 0) <= FEW_CANDIDATES ? 'few' : 'wide';
  }
}

function prepare(record: NewLogRecord): Prepared {
  const fields = record.fields && Object.keys(record.fields).length ? record.fields : null;
  const fieldsJson = fields && JSON.stringify(fields);
  return { record, fields, fieldsJson, size: record.message.length + (fieldsJson?.length ?? 0) + 64 };
}

function columnValues({ record: r, fieldsJson, size }: Prepared): SqlValue[] {
  return [r.nodeId, r.source, r.stream, r.offset, r.demo, r.token, r.ts, r.level, r.message, fieldsJson, size];
}

/**
 * A row as json_to_recordset reads it: short keys (INSERT_JSON_ROWS maps them to the columns), as
 * the keys are a third of the text PostgreSQL parses and this process writes for each line.
 */
const jsonRow = ({ record: r, fieldsJson, size }: Prepared, searchWords: string) => ({
  n: r.nodeId, src: r.source, s: r.stream, o: r.offset, d: r.demo, k: r.token,
  ts: r.ts, l: r.level, m: r.message, f: fieldsJson, z: size, w: searchWords,
});

/** PostgreSQL: a batch's rows from one JSON parameter, in batch order, those stored before skipped. */
const INSERT_JSON_ROWS = `
  INSERT INTO log_records (${COLUMNS}, search_words)
  SELECT ${COLUMNS}, search_words
  FROM ROWS FROM (json_to_recordset(?::json) AS (n text, src text, s text, o bigint, d text, k text,
    ts bigint, l integer, m text, f text, z integer, w text)) WITH ORDINALITY AS t(${COLUMNS}, search_words, position)
  ORDER BY position ON CONFLICT DO NOTHING ${RETURNED}`;

/** Rows and their search block (the ids the new rows took, and the block's words), in one statement. */
const INSERT_ROWS_AND_BLOCK = `
  WITH inserted AS (${INSERT_JSON_ROWS}),
  block AS (
    INSERT INTO log_search_blocks (first_id, last_id, words)
    SELECT min(id), max(id), array_to_tsvector(string_to_array(?, ' ')) FROM inserted HAVING count(*) > 0)
  SELECT id, node_id, stream, "offset" FROM inserted`;

/** NUL characters and unpaired surrogates: PostgreSQL text cannot hold them. */
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Any surrogate: most text has none, and no NUL either, and is kept as it is without a copy. */
const SURROGATE = /[\uD800-\uDFFF]/;
const storable = <T extends string | null>(text: T): T =>
  (text === null || (!text.includes('\u0000') && !SURROGATE.test(text)) ? text : (text.replaceAll('\u0000', '\uFFFD').replace(UNPAIRED_SURROGATE, '\uFFFD') as T));

/** The record as PostgreSQL can keep it: what it cannot hold becomes U+FFFD (as SQLite's UTF-8 does with unpaired surrogates), never a refused batch. */
function storableInPostgres(r: NewLogRecord): NewLogRecord {
  return {
    ...r, nodeId: storable(r.nodeId), stream: storable(r.stream), demo: storable(r.demo), token: storable(r.token), message: storable(r.message),
    fields: r.fields && (storableJson(r.fields) as Record<string, unknown>),
  };
}

/** Every string (key or value) of structured fields made storable: one NUL in jsonb text would fail every `fields::jsonb` filter. */
function storableJson(value: unknown): unknown {
  if (typeof value === 'string') return storable(value);
  if (Array.isArray(value)) return value.map(storableJson);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [storable(k), storableJson(v)]));
  return value;
}

/**
 * Pairs the inserted rows with the records they came from. Ids grow in insertion order, so the
 * rows sorted by id are the inserted records in batch order; a record skipped (stored before, or
 * twice in the batch) has no row.
 */
function matchInserted(prepared: Prepared[], inserted: Inserted[]): [Prepared, number][] {
  const rows = inserted.sort((a, b) => a.id - b.id);
  const pairs: [Prepared, number][] = [];
  let next = 0;
  for (const row of rows) {
    while (next < prepared.length && !sameSource(prepared[next]!.record, row)) next++;
    if (next === prepared.length) break;
    pairs.push([prepared[next]!, row.id]);
    next++;
  }
  return pairs;
}

const sameSource = (r: NewLogRecord, row: Inserted) => r.nodeId === row.node_id && r.stream === row.stream && r.offset === (row.offset === null ? null : Number(row.offset));
