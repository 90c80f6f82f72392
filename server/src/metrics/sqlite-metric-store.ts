import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { passingStoreFailure } from '../services/store-failure.js';
import { decodeChunk } from './chunk-codec.js';
import type { SeriesValue } from '@dvic/protocol';
import { pickTier, type MetricAnswer, type MetricQuery, type MetricStore, type RetentionReport, type SeriesPoints, type TierPolicy } from './metric-store.js';
import { Chunk, SeriesBuffer } from './series-buffer.js';

export const METRICS_FILE = 'dvic-metrics.sqlite';

/** What a chunk's row costs besides its data (key, lengths, B-tree cell): used for the tier caps. */
const ROW_OVERHEAD = 24;
/** Closed chunks waiting in memory that make append() flush at once. */
const FLUSH_AFTER_CLOSED = 20_000;
const RETRY_FLUSH_MS = 5000;
/** How often the open chunks are written (see flush()). */
const OPEN_WRITE_MS = 60_000;
/** Share of a tier's chunks deleted per step while a cap is exceeded. */
const DELETE_FRACTION = 0.02;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS series (
  id INTEGER PRIMARY KEY,
  source TEXT NOT NULL,
  name TEXT NOT NULL,
  UNIQUE (source, name)
);
-- Rowid tables: a chunk (up to a few KiB) stays in its page; a WITHOUT ROWID row that big would
-- spill to an overflow page of its own. Rowids grow with time, so new chunks append at the end.
CREATE TABLE IF NOT EXISTS chunks (
  id INTEGER PRIMARY KEY,
  tier INTEGER NOT NULL,
  start_ts INTEGER NOT NULL,
  series_id INTEGER NOT NULL,
  end_ts INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_time ON chunks (tier, start_ts);
CREATE INDEX IF NOT EXISTS chunks_by_series ON chunks (series_id, tier, end_ts);
-- The chunk each series is filling, rewritten at each flush: apart, so closed chunks are written once, densely.
CREATE TABLE IF NOT EXISTS open_chunks (
  series_id INTEGER NOT NULL,
  tier INTEGER NOT NULL,
  start_ts INTEGER NOT NULL,
  data BLOB NOT NULL,
  UNIQUE (series_id, tier)
);
`;

type Row = { start_ts: number; data: Buffer };

/**
 * Metric history in its own SQLite file in the data dir (so its budget, DVIC_METRICS_MAX_MB, is
 * apart from the logs'): chunks of compressed points per series and tier (raw, 1 minute, 1 hour).
 * Samples wait in memory in their open chunk and are written by flush(); a query reads the
 * written chunks and the ones in memory, so a chart shows the newest sample at once.
 * A full disk: writes fail, chunks wait in memory (a bounded number per series) and are written
 * once there is room.
 */
export class SqliteMetricStore implements MetricStore {
  private readonly db: Database.Database;
  private readonly bySource = new Map<string, Map<string, SeriesBuffer>>();
  private readonly tierBytes: number[];
  private readonly tierRows: number[];
  private closedWaiting = 0;
  private openWrittenAt = 0;
  /** After a refused write, append() does not try again before this (the flush timer does). */
  private retryFlushAt = 0;
  private readonly insertClosed: Database.Statement;
  private readonly upsertOpen: Database.Statement;
  private readonly deleteOpen: Database.Statement;
  private readonly oldestOf: Database.Statement<[number]>;
  private readonly readRange: Database.Statement<[number, number, number, number], Row>;

  constructor(file: string, private readonly tiers: TierPolicy[], private readonly budgetBytes: number) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    if (this.db.pragma('page_count', { simple: true }) === 0) this.db.pragma('auto_vacuum = INCREMENTAL');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    // 32 MiB of page cache (default 2): the chunks of recent charts stay in memory.
    this.db.pragma('cache_size = -32768');
    this.db.exec(SCHEMA);
    this.insertClosed = this.db.prepare('INSERT INTO chunks (tier, start_ts, series_id, end_ts, data) VALUES (?, ?, ?, ?, ?)');
    this.upsertOpen = this.db.prepare('INSERT OR REPLACE INTO open_chunks (series_id, tier, start_ts, data) VALUES (?, ?, ?, ?)');
    this.deleteOpen = this.db.prepare('DELETE FROM open_chunks WHERE series_id = ? AND tier = ?');
    // INDEXED BY: without statistics the planner may take chunks_by_time and scan a whole tier.
    this.oldestOf = this.db.prepare('SELECT MIN(start_ts) AS t FROM chunks WHERE tier = ?');
    this.readRange = this.db.prepare('SELECT start_ts, data FROM chunks INDEXED BY chunks_by_series WHERE series_id = ? AND tier = ? AND end_ts >= ? AND start_ts <= ? ORDER BY start_ts');
    for (const s of this.db.prepare('SELECT id, source, name FROM series').all() as { id: number; source: string; name: string }[]) this.remember(s.source, s.id, s.name);
    this.resumeOpenChunks();
    const sizes = this.tiers.map((_, tier) => this.db.prepare('SELECT COALESCE(SUM(length(data)), 0) AS bytes, COUNT(*) AS n FROM chunks WHERE tier = ?').get(tier) as { bytes: number; n: number });
    this.tierBytes = sizes.map((row) => row.bytes + row.n * ROW_OVERHEAD);
    this.tierRows = sizes.map((row) => row.n);
  }

  private resumeOpenChunks(): void {
    const byId = new Map<number, SeriesBuffer>();
    for (const sources of this.bySource.values()) for (const buffer of sources.values()) byId.set(buffer.id, buffer);
    const rows = this.db.prepare('SELECT series_id, tier, start_ts, data FROM open_chunks ORDER BY tier').all() as { series_id: number; tier: number; start_ts: number; data: Buffer }[];
    for (const row of rows) {
      const points = decodeChunk(row.data, row.start_ts);
      const chunk = new Chunk(points.columns.length);
      points.ts.forEach((ts, i) => chunk.push(ts, points.columns.map((c) => c[i]!)));
      if (chunk.ts.length > 0) byId.get(row.series_id)?.resume(row.tier, chunk);
    }
  }

  append(source: string, ts: number, values: SeriesValue[]): void {
    for (const [name, value] of values) {
      const buffer = this.series(source, name);
      if (!buffer) continue;
      buffer.add(ts, value);
      this.closedWaiting += buffer.closedSince();
      if (buffer.crowded) this.closedWaiting = FLUSH_AFTER_CLOSED;
    }
    // A burst (a backfill, a bench) writes as it goes rather than holding chunks in memory.
    if (this.closedWaiting >= FLUSH_AFTER_CLOSED && Date.now() >= this.retryFlushAt) this.flush();
  }

  removeSource(source: string): void {
    // Memory first: a disk that refuses the delete still frees the memory (the rows go at the next removal).
    this.bySource.delete(source);
    const series = this.db.prepare('SELECT id FROM series WHERE source = ?').all(source) as { id: number }[];
    this.db.transaction(() => {
      for (const { id } of series) {
        const gone = this.db.prepare('SELECT tier, COALESCE(SUM(length(data)), 0) AS bytes, COUNT(*) AS n FROM chunks WHERE series_id = ? GROUP BY tier').all(id) as { tier: number; bytes: number; n: number }[];
        this.db.prepare('DELETE FROM chunks WHERE series_id = ?').run(id);
        this.db.prepare('DELETE FROM open_chunks WHERE series_id = ?').run(id);
        for (const g of gone) {
          this.tierBytes[g.tier] = Math.max(0, this.tierBytes[g.tier]! - (g.bytes + g.n * ROW_OVERHEAD));
          this.tierRows[g.tier] = Math.max(0, this.tierRows[g.tier]! - g.n);
        }
      }
      this.db.prepare('DELETE FROM series WHERE source = ?').run(source);
    })();
  }

  /**
   * Series without a sample for longer than the raw tier keeps: what they hold in memory is written
   * and let go (only their name and id stay, so queries still read their rollups from the file).
   */
  private evictIdle(now: number): void {
    const cutoff = now - this.tiers[0]!.retentionMs;
    const idle: SeriesBuffer[] = [];
    for (const sources of this.bySource.values()) for (const buffer of sources.values()) if (buffer.lastTs < cutoff && !buffer.empty) idle.push(buffer);
    if (idle.length === 0) return;
    for (const buffer of idle) buffer.closeAll();
    this.flush();
    try {
      this.db.transaction(() => {
        for (const buffer of idle) if (buffer.empty) this.db.prepare('DELETE FROM open_chunks WHERE series_id = ?').run(buffer.id);
      })();
    } catch (err) {
      if (!passingStoreFailure(err)) throw err;
    }
  }

  /** Chunks held in memory, all series together (what evictIdle() lets go). */
  chunksInMemory(): number {
    let n = 0;
    for (const sources of this.bySource.values()) for (const buffer of sources.values()) for (const list of buffer.chunks) n += list.length;
    return n;
  }

  /** Sources with series in memory (each holds its buffers until removed). */
  sources(): string[] {
    return [...this.bySource.keys()].sort();
  }

  seriesNames(source: string): string[] {
    return [...(this.bySource.get(source)?.keys() ?? [])].sort();
  }

  query(q: MetricQuery): MetricAnswer {
    const now = q.now ?? Date.now();
    const oldest = this.tiers.map((_, tier) => (this.oldestOf.get(tier) as { t: number | null }).t ?? Number.POSITIVE_INFINITY);
    const { index, step } = pickTier(this.tiers, q.from, q.to, q.step ?? 0, now, oldest);
    const names = this.seriesNames(q.source).filter((n) => q.names.length === 0 || q.names.some((p) => (p.endsWith('*') ? n.startsWith(p.slice(0, -1)) : n === p)));
    const series: SeriesPoints[] = names.map((name) => {
      const buffer = this.bySource.get(q.source)!.get(name)!;
      return { name, points: this.points(buffer, index, q.from, q.to, step) };
    });
    return { tier: this.tiers[index]!.name, step: this.tiers[index]!.resolutionMs === 0 && step <= 0 ? 0 : step, series };
  }

  /**
   * Closed chunks are written at every flush; the open ones (rewritten whole each time) at most
   * every OPEN_WRITE_MS, or when `all` (closing): a crash loses at most that much of the newest samples.
   */
  flush(all = false): void {
    this.closedWaiting = 0;
    const now = Date.now();
    const withOpen = all || now - this.openWrittenAt >= OPEN_WRITE_MS;
    const writes: { buffer: SeriesBuffer; tier: number; chunk: Chunk; data: Buffer | null }[] = [];
    for (const sources of this.bySource.values()) {
      for (const buffer of sources.values()) {
        buffer.chunks.forEach((list, tier) => {
          for (const chunk of list) {
            if (chunk.dirty && (withOpen || chunk.closed)) writes.push({ buffer, tier, chunk, data: chunk.ts.length > 0 ? chunk.bytes() : null });
          }
        });
      }
    }
    if (withOpen) this.openWrittenAt = now;
    if (writes.length === 0) return;
    try {
      this.db.transaction(() => {
        for (const { buffer, tier, chunk, data } of writes) {
          if (!data) this.deleteOpen.run(buffer.id, tier);
          else if (chunk.closed) this.insertClosed.run(tier, chunk.start, buffer.id, chunk.end, data);
          else this.upsertOpen.run(buffer.id, tier, chunk.start, data);
        }
      })();
    } catch (err) {
      if (!passingStoreFailure(err)) throw err;
      this.retryFlushAt = Date.now() + RETRY_FLUSH_MS;
      return;
    }
    for (const { buffer, tier, chunk, data } of writes) {
      if (data && chunk.closed) {
        this.tierBytes[tier]! += data.length + ROW_OVERHEAD;
        this.tierRows[tier]!++;
      }
      buffer.written(tier, chunk);
    }
  }

  enforceRetention(now: number): RetentionReport {
    this.evictIdle(now);
    const report: RetentionReport = { deletedChunks: 0, bytes: 0 };
    this.tiers.forEach((tier, i) => this.deleteBefore(i, now - tier.retentionMs, report));
    this.tiers.forEach((tier, i) => {
      while (this.tierBytes[i]! > tier.maxBytes && this.deleteOldest(i, report));
    });
    for (let guard = 0; guard < 10_000 && this.diskBytes() > this.budgetBytes; guard++) {
      const fullest = this.tierBytes.map((b, i) => b / Math.max(1, this.tiers[i]!.maxBytes)).reduce((best, r, i, all) => (r > all[best]! ? i : best), 0);
      if (!this.deleteOldest(fullest, report)) break;
    }
    if (report.deletedChunks > 0) this.compact();
    return report;
  }

  diskBytes(): number {
    const pages = (this.db.pragma('page_count', { simple: true }) as number) - (this.db.pragma('freelist_count', { simple: true }) as number);
    return pages * (this.db.pragma('page_size', { simple: true }) as number);
  }

  /** Bytes each tier's chunks take (data and row), as the caps count them. */
  tierSizes(): number[] {
    return [...this.tierBytes];
  }

  close(): void {
    for (const sources of this.bySource.values()) for (const buffer of sources.values()) buffer.finishBuckets();
    this.flush(true);
    this.db.close();
  }

  private points(buffer: SeriesBuffer, tier: number, from: number, to: number, step: number): [number, number][] {
    const inMemory = buffer.chunks[tier]!.filter((c) => c.ts.length > 0);
    const memoryStarts = new Set(inMemory.map((c) => c.start));
    const decoded = this.readRange.all(buffer.id, tier, from, to)
      .filter((row) => !memoryStarts.has(row.start_ts))
      .map((row) => decodeChunk(row.data, row.start_ts));
    const all = [...decoded, ...inMemory];
    const partial = buffer.partial(tier);
    if (partial) all.push({ ts: [partial.start], columns: partial.columns().map((v) => [v]) });
    const out: [number, number, number][] = [];
    // Rollups answer their mean, weighted by the samples it stands for.
    const mean = tier === 0 ? 0 : 2;
    for (const chunk of all) {
      for (let i = 0; i < chunk.ts.length; i++) {
        const ts = chunk.ts[i]!;
        if (ts >= from && ts <= to) out.push([ts, chunk.columns[mean]![i]!, tier === 0 ? 1 : chunk.columns[4]![i]!]);
      }
    }
    out.sort((a, b) => a[0] - b[0]);
    return downsample(out, step, this.tiers[tier]!.resolutionMs);
  }

  private series(source: string, name: string): SeriesBuffer | undefined {
    const known = this.bySource.get(source)?.get(name);
    if (known) return known;
    try {
      this.db.prepare('INSERT OR IGNORE INTO series (source, name) VALUES (?, ?)').run(source, name);
      const { id } = this.db.prepare('SELECT id FROM series WHERE source = ? AND name = ?').get(source, name) as { id: number };
      return this.remember(source, id, name);
    } catch (err) {
      if (passingStoreFailure(err)) return undefined;
      throw err;
    }
  }

  private remember(source: string, id: number, name: string): SeriesBuffer {
    let sources = this.bySource.get(source);
    if (!sources) this.bySource.set(source, (sources = new Map()));
    const buffer = new SeriesBuffer(id, name);
    sources.set(name, buffer);
    return buffer;
  }

  private deleteBefore(tier: number, cutoff: number, report: RetentionReport): void {
    this.deleteWhere(tier, 'start_ts < ? AND end_ts < ?', [cutoff, cutoff], report);
  }

  /** The oldest batch of chunks of a tier; false when it has none. */
  private deleteOldest(tier: number, report: RetentionReport): boolean {
    const batch = Math.max(1, Math.ceil(this.tierRows[tier]! * DELETE_FRACTION));
    const row = this.db.prepare('SELECT start_ts FROM chunks WHERE tier = ? ORDER BY start_ts LIMIT 1 OFFSET ?').get(tier, batch - 1) as { start_ts: number } | undefined;
    const last = row?.start_ts ?? (this.db.prepare('SELECT MAX(start_ts) AS m FROM chunks WHERE tier = ?').get(tier) as { m: number | null }).m;
    if (last === null) return false;
    return this.deleteWhere(tier, 'start_ts <= ?', [last], report) > 0;
  }

  private deleteWhere(tier: number, where: string, args: number[], report: RetentionReport): number {
    const gone = this.db.prepare(`SELECT COALESCE(SUM(length(data)), 0) AS bytes, COUNT(*) AS n FROM chunks WHERE tier = ? AND ${where}`).get(tier, ...args) as { bytes: number; n: number };
    if (gone.n === 0) return 0;
    this.db.prepare(`DELETE FROM chunks WHERE tier = ? AND ${where}`).run(tier, ...args);
    const bytes = gone.bytes + gone.n * ROW_OVERHEAD;
    this.tierBytes[tier] = Math.max(0, this.tierBytes[tier]! - bytes);
    this.tierRows[tier] = Math.max(0, this.tierRows[tier]! - gone.n);
    report.deletedChunks += gone.n;
    report.bytes += bytes;
    return gone.n;
  }

  /** Gives the freed pages back to the filesystem. */
  private compact(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.pragma('incremental_vacuum');
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }
}

/** Points at most `step` apart: the weighted mean of each step, at its start; a lone point keeps its time. */
function downsample(points: [number, number, number][], step: number, resolution: number): [number, number][] {
  if (step <= resolution || step <= 0) return points.map(([ts, v]) => [ts, v]);
  const out: [number, number][] = [];
  let bucket = Number.NaN;
  let sum = 0;
  let weight = 0;
  let first = 0;
  let n = 0;
  const emit = () => {
    if (n > 0) out.push([n === 1 ? first : bucket, Math.round((1000 * sum) / weight) / 1000]);
  };
  for (const [ts, v, w] of points) {
    const b = Math.floor(ts / step) * step;
    if (b !== bucket) {
      emit();
      bucket = b;
      sum = 0;
      weight = 0;
      n = 0;
      first = ts;
    }
    sum += v * w;
    weight += w;
    n++;
  }
  emit();
  return out;
}
