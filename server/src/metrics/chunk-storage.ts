/**
 * What a chunked metric store (chunked-metric-store.ts) needs from its database: series ids, chunk
 * rows (closed ones written once, the open one per series and tier rewritten), and deletes that
 * say how many bytes they freed. SQLite (sqlite-metric-store.ts) and PostgreSQL
 * (postgres-metric-store.ts) implement it; the memory, rollups, tier choice and retention policy
 * live once, in the store.
 */

export interface SeriesRow {
  id: number;
  source: string;
  name: string;
}

export interface ChunkRow {
  start_ts: number;
  data: Buffer;
}

export interface OpenChunkRow extends ChunkRow {
  series_id: number;
  tier: number;
}

/** Chunks and their data bytes (without the row overhead). */
export interface ChunkCount {
  bytes: number;
  n: number;
}

export interface TierCount extends ChunkCount {
  tier: number;
}

/** One chunk to write: a closed one (inserted once), an open one (replaced), or null data (its open row deleted). */
export interface ChunkWrite {
  seriesId: number;
  tier: number;
  start: number;
  end: number;
  closed: boolean;
  data: Buffer | null;
}

/** What the store finds when it opens: its series, the chunks being filled, and each tier's size. */
export interface StoredState {
  series: SeriesRow[];
  open: OpenChunkRow[];
  tiers: TierCount[];
}

export interface ChunkStorage {
  /**
   * Whether other processes write the same tables (PostgreSQL replicas): then series names and
   * tier sizes are read from the database, not trusted from this process's memory.
   */
  readonly shared: boolean;
  /** What a chunk's row costs besides its data (key, lengths, row header): counted against the caps. */
  readonly rowOverhead: number;
  /** Ids of these series, their rows created when new. */
  seriesIds(keys: { source: string; name: string }[]): Promise<SeriesRow[]>;
  /** Series of one source in the database (used when shared). */
  listSeries(source: string): Promise<SeriesRow[]>;
  /** All the writes of one flush, in one transaction: all or none. */
  write(writes: ChunkWrite[]): Promise<void>;
  /** Written chunks of these series in one tier overlapping [from, to], per series by start. */
  read(seriesIds: number[], tier: number, from: number, to: number): Promise<Map<number, ChunkRow[]>>;
  /** The open chunk rows of these series in one tier (series another replica fills). */
  readOpen(seriesIds: number[], tier: number): Promise<Map<number, ChunkRow[]>>;
  /** The first start time each tier holds (null: none). */
  oldestStarts(tiers: number): Promise<(number | null)[]>;
  /** Each tier's chunks and bytes (when shared: what every replica wrote). */
  tierCounts(): Promise<TierCount[]>;
  /** Deletes a source's series, chunks and open chunks; what each tier lost. */
  removeSource(source: string): Promise<TierCount[]>;
  /** Deletes the open chunk rows of these series (let go of from memory, all written as closed chunks). */
  dropOpen(seriesIds: number[]): Promise<void>;
  /** Deletes a tier's chunks that ended before cutoff. */
  deleteBefore(tier: number, cutoff: number): Promise<ChunkCount>;
  /** Deletes a tier's oldest `batch` chunks (those starting up to the batch's last start). */
  deleteOldest(tier: number, batch: number): Promise<ChunkCount>;
  /** Bytes in use; `tierBytes`: the store's count of each tier's chunks (data and rows). */
  diskBytes(tierBytes: number[]): Promise<number>;
  /** After deletes: gives freed space back where the database does not reuse it by itself. */
  compact(): Promise<void>;
  /** A write error that may pass (full disk, busy or unreachable database): retried later, not thrown. */
  isPassing(err: unknown): boolean;
  close(): Promise<void>;
}
