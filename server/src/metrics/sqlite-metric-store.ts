import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { passingStoreFailure } from '../services/store-failure.js';
import type { ChunkCount, ChunkRow, ChunkStorage, ChunkWrite, OpenChunkRow, SeriesRow, StoredState, TierCount } from './chunk-storage.js';
import { ChunkedMetricStore } from './chunked-metric-store.js';
import type { TierPolicy } from './metric-store.js';

export const METRICS_FILE = 'dvic-metrics.sqlite';

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

/**
 * Metric history in its own SQLite file in the data dir (so its budget, DVIC_METRICS_MAX_MB, is
 * apart from the logs'). The memory, rollups and policy are ChunkedMetricStore's; this file is the
 * storage. A full disk: writes fail, chunks wait in memory and are written once there is room.
 */
export class SqliteMetricStore extends ChunkedMetricStore {
  constructor(file: string, tiers: TierPolicy[], budgetBytes: number) {
    const storage = new SqliteChunkStorage(file);
    super(storage, tiers, budgetBytes, storage.load(tiers.length));
  }
}

/**
 * The SQLite file: better-sqlite3 is synchronous, so each method has done its work when it
 * returns (its Promise is already settled); one process owns the file, so memory is the truth
 * about series and sizes (not shared).
 */
class SqliteChunkStorage implements ChunkStorage {
  readonly shared = false;
  /** Key, lengths and B-tree cell of a chunk's row. */
  readonly rowOverhead = 24;
  private readonly db: Database.Database;
  private readonly insertClosed: Database.Statement;
  private readonly upsertOpen: Database.Statement;
  private readonly deleteOpen: Database.Statement;
  private readonly oldestOf: Database.Statement<[number], { t: number | null }>;
  private readonly readRange: Database.Statement<[number, number, number, number], ChunkRow>;

  constructor(file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    try {
      if (this.db.pragma('page_count', { simple: true }) === 0) this.db.pragma('auto_vacuum = INCREMENTAL');
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 5000');
      // 32 MiB of page cache (default 2): the chunks of recent charts stay in memory.
      this.db.pragma('cache_size = -32768');
      this.db.exec(SCHEMA);
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.insertClosed = this.db.prepare('INSERT INTO chunks (tier, start_ts, series_id, end_ts, data) VALUES (?, ?, ?, ?, ?)');
    this.upsertOpen = this.db.prepare('INSERT OR REPLACE INTO open_chunks (series_id, tier, start_ts, data) VALUES (?, ?, ?, ?)');
    this.deleteOpen = this.db.prepare('DELETE FROM open_chunks WHERE series_id = ? AND tier = ?');
    this.oldestOf = this.db.prepare('SELECT MIN(start_ts) AS t FROM chunks WHERE tier = ?');
    // INDEXED BY: without statistics the planner may take chunks_by_time and scan a whole tier.
    this.readRange = this.db.prepare('SELECT start_ts, data FROM chunks INDEXED BY chunks_by_series WHERE series_id = ? AND tier = ? AND end_ts >= ? AND start_ts <= ? ORDER BY start_ts');
  }

  load(tiers: number): StoredState {
    return {
      series: this.db.prepare('SELECT id, source, name FROM series').all() as SeriesRow[],
      open: this.db.prepare('SELECT series_id, tier, start_ts, data FROM open_chunks').all() as OpenChunkRow[],
      tiers: Array.from({ length: tiers }, (_, tier) => ({ tier, ...(this.db.prepare('SELECT COALESCE(SUM(length(data)), 0) AS bytes, COUNT(*) AS n FROM chunks WHERE tier = ?').get(tier) as ChunkCount) })),
    };
  }

  async seriesIds(keys: { source: string; name: string }[]): Promise<SeriesRow[]> {
    const insert = this.db.prepare('INSERT OR IGNORE INTO series (source, name) VALUES (?, ?)');
    const select = this.db.prepare('SELECT id, source, name FROM series WHERE source = ? AND name = ?');
    return this.db.transaction(() => keys.map(({ source, name }) => {
      insert.run(source, name);
      return select.get(source, name) as SeriesRow;
    }))();
  }

  async listSeries(source: string): Promise<SeriesRow[]> {
    return this.db.prepare('SELECT id, source, name FROM series WHERE source = ?').all(source) as SeriesRow[];
  }

  async write(writes: ChunkWrite[]): Promise<void> {
    this.db.transaction(() => {
      for (const w of writes) {
        if (!w.data) this.deleteOpen.run(w.seriesId, w.tier);
        else if (w.closed) this.insertClosed.run(w.tier, w.start, w.seriesId, w.end, w.data);
        else this.upsertOpen.run(w.seriesId, w.tier, w.start, w.data);
      }
    })();
  }

  async read(seriesIds: number[], tier: number, from: number, to: number): Promise<Map<number, ChunkRow[]>> {
    return new Map(seriesIds.map((id) => [id, this.readRange.all(id, tier, from, to)]));
  }

  async readOpen(seriesIds: number[], tier: number): Promise<Map<number, ChunkRow[]>> {
    const select = this.db.prepare('SELECT start_ts, data FROM open_chunks WHERE series_id = ? AND tier = ?');
    return new Map(seriesIds.map((id) => [id, select.all(id, tier) as ChunkRow[]]));
  }

  async oldestStarts(tiers: number): Promise<(number | null)[]> {
    return Array.from({ length: tiers }, (_, tier) => this.oldestOf.get(tier)!.t);
  }

  async tierCounts(): Promise<TierCount[]> {
    return this.db.prepare('SELECT tier, COALESCE(SUM(length(data)), 0) AS bytes, COUNT(*) AS n FROM chunks GROUP BY tier').all() as TierCount[];
  }

  async removeSource(source: string): Promise<TierCount[]> {
    const series = this.db.prepare('SELECT id FROM series WHERE source = ?').all(source) as { id: number }[];
    return this.db.transaction(() => {
      const gone: TierCount[] = [];
      for (const { id } of series) {
        gone.push(...(this.db.prepare('SELECT tier, COALESCE(SUM(length(data)), 0) AS bytes, COUNT(*) AS n FROM chunks WHERE series_id = ? GROUP BY tier').all(id) as TierCount[]));
        this.db.prepare('DELETE FROM chunks WHERE series_id = ?').run(id);
        this.db.prepare('DELETE FROM open_chunks WHERE series_id = ?').run(id);
      }
      this.db.prepare('DELETE FROM series WHERE source = ?').run(source);
      return gone;
    })();
  }

  async dropOpen(seriesIds: number[]): Promise<void> {
    const drop = this.db.prepare('DELETE FROM open_chunks WHERE series_id = ?');
    this.db.transaction(() => { for (const id of seriesIds) drop.run(id); })();
  }

  async deleteBefore(tier: number, cutoff: number): Promise<ChunkCount> {
    return this.deleteWhere(tier, 'start_ts < ? AND end_ts < ?', [cutoff, cutoff]);
  }

  async deleteOldest(tier: number, batch: number): Promise<ChunkCount> {
    const row = this.db.prepare('SELECT start_ts FROM chunks WHERE tier = ? ORDER BY start_ts LIMIT 1 OFFSET ?').get(tier, batch - 1) as { start_ts: number } | undefined;
    const last = row?.start_ts ?? (this.db.prepare('SELECT MAX(start_ts) AS m FROM chunks WHERE tier = ?').get(tier) as { m: number | null }).m;
    if (last === null) return { bytes: 0, n: 0 };
    return this.deleteWhere(tier, 'start_ts <= ?', [last]);
  }

  private deleteWhere(tier: number, where: string, args: number[]): ChunkCount {
    const gone = this.db.prepare(`SELECT COALESCE(SUM(length(data)), 0) AS bytes, COUNT(*) AS n FROM chunks WHERE tier = ? AND ${where}`).get(tier, ...args) as ChunkCount;
    if (gone.n > 0) this.db.prepare(`DELETE FROM chunks WHERE tier = ? AND ${where}`).run(tier, ...args);
    return gone;
  }

  /** The file's pages in use (the budget counts indexes, series and open chunks too). */
  async diskBytes(): Promise<number> {
    const pages = (this.db.pragma('page_count', { simple: true }) as number) - (this.db.pragma('freelist_count', { simple: true }) as number);
    return pages * (this.db.pragma('page_size', { simple: true }) as number);
  }

  /** Gives the freed pages back to the filesystem. */
  async compact(): Promise<void> {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.pragma('incremental_vacuum');
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  isPassing(err: unknown): boolean {
    return passingStoreFailure(err) !== null;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
