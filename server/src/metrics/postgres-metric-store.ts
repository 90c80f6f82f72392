import pg from 'pg';
import { poolTimeouts } from '../db/postgres-timeouts.js';
import { passingStoreFailure } from '../services/store-failure.js';
import { decodeChunk } from './chunk-codec.js';
import type { ChunkCount, ChunkRow, ChunkStorage, ChunkWrite, SeriesRow, StoredState, TierCount } from './chunk-storage.js';
import { ChunkedMetricStore } from './chunked-metric-store.js';
import type { TierPolicy } from './metric-store.js';
import { migrateMetricTables } from './postgres-metric-schema.js';

/** Connections of the metric store's pool: flushes and retention run one at a time (a large flush over all but one: write()), chart queries beside them. */
const POOL_SIZE = 4;
/** Rows per multi-row statement (a flush of a burst writes thousands of chunks). */
const ROWS_PER_STATEMENT = 2000;
/** A write of at least this many chunks is split over the pool's connections (write()), all but one: reads go on meanwhile. */
const PARALLEL_WRITE_ROWS = 2 * ROWS_PER_STATEMENT;
const PARALLEL_WRITES = POOL_SIZE - 1;
const INT8_OID = 20;
/** SQLSTATE classes that may pass: connection (08), rollback (40), resources: disk full, memory (53), operator (57), system (58). */
const PASSING_CLASSES = new Set(['08', '40', '53', '57', '58']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Metric history in PostgreSQL (scale-out): the same chunks, tiers, rollups and retention as the
 * SQLite file, in plain tables (postgres-metric-schema.ts) of the server's database.
 */
export class PostgresMetricStore extends ChunkedMetricStore {
  /** Connects, migrates the metric tables and opens the store. */
  static async open(databaseUrl: string, tiers: TierPolicy[], budgetBytes: number): Promise<PostgresMetricStore> {
    const storage = new PostgresChunkStorage(databaseUrl);
    try {
      await migrateMetricTables(storage.pool);
      return new PostgresMetricStore(storage, tiers, budgetBytes, await storage.load());
    } catch (err) {
      await storage.close();
      // The host and database, never the password the URL may hold.
      const { host, pathname } = new URL(databaseUrl);
      throw new Error(`cannot open the metric history in PostgreSQL at ${host}${pathname}: ${(err as Error).message}`, { cause: err });
    }
  }

  private constructor(private readonly tables: PostgresChunkStorage, tiers: TierPolicy[], budgetBytes: number, state: StoredState) {
    super(tables, tiers, budgetBytes, state);
  }

  /** What the metric tables take on disk, indexes, TOAST and not yet reused space included. */
  relationBytes(): Promise<number> {
    return this.tables.relationBytes();
  }
}

type Params = unknown[];

/**
 * The tables, over a `pg` Pool of the store's own rather than the server's `Sql` layer: a flush
 * writes thousands of chunks as a few multi-row `unnest` statements with typed arrays, and
 * retention deletes and sums in one `DELETE ... RETURNING` statement — PostgreSQL forms the
 * dialect-neutral `Sql` interface does not speak; and a pool of its own keeps a burst of history
 * writes from taking the connections API requests need.
 *
 * Several replicas write the same tables (shared): series rows are found or created by
 * (source, name), a series' open chunk left by another process (a restart, a node that moved
 * replica) is sealed into a closed chunk when this process starts filling the series, and sizes
 * are counted in the database.
 */
class PostgresChunkStorage implements ChunkStorage {
  readonly shared = true;
  /** Tuple header, line pointer, the key columns and its index entries. */
  readonly rowOverhead = 80;
  readonly pool: pg.Pool;

  constructor(databaseUrl: string) {
    this.pool = new pg.Pool({
      connectionString: databaseUrl,
      max: POOL_SIZE,
      ...poolTimeouts(),
      // ms timestamps and sums are BIGINT: JS numbers (exact below 2^53), for this pool only.
      types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser },
    });
    // An idle connection the server drops must not crash the process: the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  /** Nothing is resumed into memory: each series is picked up when its samples come (see seriesIds()). */
  async load(): Promise<StoredState> {
    return { series: [], open: [], tiers: await this.tierCounts() };
  }

  async seriesIds(keys: { source: string; name: string }[]): Promise<SeriesRow[]> {
    // In one order, so two replicas creating series together never wait on each other in a cycle.
    const sorted = [...keys].sort((a, b) => (a.source + '\0' + a.name < b.source + '\0' + b.name ? -1 : 1));
    const sources = sorted.map((k) => k.source);
    const names = sorted.map((k) => k.name);
    return this.transaction(async (client) => {
      await client.query('INSERT INTO metric_series (source, name) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (source, name) DO NOTHING', [sources, names]);
      const { rows } = await client.query<SeriesRow>('SELECT s.id, s.source, s.name FROM metric_series s JOIN unnest($1::text[], $2::text[]) AS k(source, name) ON s.source = k.source AND s.name = k.name', [sources, names]);
      await this.sealOpen(client, rows.map((r) => r.id));
      return rows;
    });
  }

  /** The open chunks another process left for these series become closed chunks: this process starts new ones. */
  private async sealOpen(client: pg.PoolClient, seriesIds: number[]): Promise<void> {
    const { rows } = await client.query<ChunkRow & { series_id: number; tier: number }>('DELETE FROM metric_open_chunks WHERE series_id = ANY($1::bigint[]) RETURNING series_id, tier, start_ts, data', [seriesIds]);
    const sealed = rows.map((row) => ({ seriesId: row.series_id, tier: row.tier, start: row.start_ts, end: decodeChunk(row.data, row.start_ts).ts.at(-1) ?? row.start_ts, closed: true, data: row.data }));
    await this.insertClosed(client, sealed);
  }

  async listSeries(source: string): Promise<SeriesRow[]> {
    return (await this.pool.query<SeriesRow>('SELECT id, source, name FROM metric_series WHERE source = $1', [source])).rows;
  }

  /**
   * A large write (a replica closing with thousands of nodes writes every open chunk) goes as up
   * to PARALLEL_WRITES transactions at once, each for its own series: one took over 30 s for 5,000 nodes,
   * mostly waiting for round trips. A part that fails fails the write: the store keeps every
   * chunk dirty and writes them again (a row written twice is replaced, not doubled).
   */
  async write(writes: ChunkWrite[]): Promise<void> {
    const parts = writes.length < PARALLEL_WRITE_ROWS ? [writes] : splitBySeries(writes, PARALLEL_WRITES);
    // Every part settles before the write answers: a retry must not overlap a part still running.
    const failed = (await Promise.allSettled(parts.map((part) => this.writeOne(part)))).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async writeOne(writes: ChunkWrite[]): Promise<void> {
    await this.transaction(async (client) => {
      await this.insertClosed(client, writes.filter((w) => w.data && w.closed));
      const open = lastByKey(writes.filter((w) => w.data && !w.closed), (w) => `${w.seriesId}:${w.tier}`);
      for (const part of slices(open)) {
        await client.query(
          `INSERT INTO metric_open_chunks (series_id, tier, start_ts, data) SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bigint[], $4::bytea[])
           ON CONFLICT (series_id, tier) DO UPDATE SET start_ts = excluded.start_ts, data = excluded.data`,
          [part.map((w) => w.seriesId), part.map((w) => w.tier), part.map((w) => w.start), part.map((w) => w.data)],
        );
      }
      for (const part of slices(writes.filter((w) => !w.data))) {
        await client.query('DELETE FROM metric_open_chunks o USING unnest($1::bigint[], $2::smallint[]) AS d(series_id, tier) WHERE o.series_id = d.series_id AND o.tier = d.tier', [part.map((w) => w.seriesId), part.map((w) => w.tier)]);
      }
    });
  }

  /** Closed chunks; the same key again (a flush retried after its commit was not confirmed) replaces the row. */
  private async insertClosed(client: pg.PoolClient, writes: ChunkWrite[]): Promise<void> {
    for (const part of slices(lastByKey(writes, (w) => `${w.seriesId}:${w.tier}:${w.start}`))) {
      await client.query(
        `INSERT INTO metric_chunks (series_id, tier, start_ts, end_ts, data) SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bigint[], $4::bigint[], $5::bytea[])
         ON CONFLICT (series_id, tier, start_ts) DO UPDATE SET end_ts = excluded.end_ts, data = excluded.data`,
        [part.map((w) => w.seriesId), part.map((w) => w.tier), part.map((w) => w.start), part.map((w) => w.end), part.map((w) => w.data)],
      );
    }
  }

  async read(seriesIds: number[], tier: number, from: number, to: number): Promise<Map<number, ChunkRow[]>> {
    return this.bySeries('SELECT series_id, start_ts, data FROM metric_chunks WHERE series_id = ANY($1::bigint[]) AND tier = $2 AND end_ts >= $3 AND start_ts <= $4 ORDER BY series_id, start_ts', [seriesIds, tier, from, to]);
  }

  async readOpen(seriesIds: number[], tier: number): Promise<Map<number, ChunkRow[]>> {
    return this.bySeries('SELECT series_id, start_ts, data FROM metric_open_chunks WHERE series_id = ANY($1::bigint[]) AND tier = $2', [seriesIds, tier]);
  }

  private async bySeries(text: string, params: Params): Promise<Map<number, ChunkRow[]>> {
    const out = new Map<number, ChunkRow[]>();
    for (const row of (await this.pool.query<ChunkRow & { series_id: number }>(text, params)).rows) {
      const list = out.get(row.series_id);
      if (list) list.push(row);
      else out.set(row.series_id, [row]);
    }
    return out;
  }

  async oldestStarts(tiers: number): Promise<(number | null)[]> {
    // One index probe per tier (a MIN over the whole table grouped by tier would read every row).
    const { rows } = await this.pool.query<{ tier: number; t: number | null }>('SELECT g.tier, (SELECT MIN(start_ts) FROM metric_chunks c WHERE c.tier = g.tier) AS t FROM generate_series(0, $1::int - 1) AS g(tier) ORDER BY g.tier', [tiers]);
    return rows.map((r) => r.t);
  }

  async tierCounts(): Promise<TierCount[]> {
    return (await this.pool.query<TierCount>('SELECT tier, COALESCE(SUM(octet_length(data)), 0) AS bytes, COUNT(*) AS n FROM metric_chunks GROUP BY tier')).rows;
  }

  async removeSource(source: string): Promise<TierCount[]> {
    const { rows } = await this.pool.query<TierCount>(
      `WITH s AS (DELETE FROM metric_series WHERE source = $1 RETURNING id),
            o AS (DELETE FROM metric_open_chunks WHERE series_id IN (SELECT id FROM s)),
            c AS (DELETE FROM metric_chunks WHERE series_id IN (SELECT id FROM s) RETURNING tier, octet_length(data) AS b)
       SELECT tier, COALESCE(SUM(b), 0) AS bytes, COUNT(*) AS n FROM c GROUP BY tier`,
      [source],
    );
    return rows;
  }

  async dropOpen(seriesIds: number[]): Promise<void> {
    if (seriesIds.length > 0) await this.pool.query('DELETE FROM metric_open_chunks WHERE series_id = ANY($1::bigint[])', [seriesIds]);
  }

  async deleteBefore(tier: number, cutoff: number): Promise<ChunkCount> {
    return this.deleteCounting('DELETE FROM metric_chunks WHERE tier = $1 AND start_ts < $2 AND end_ts < $2', [tier, cutoff]);
  }

  async deleteOldest(tier: number, batch: number): Promise<ChunkCount> {
    return this.deleteCounting(
      `DELETE FROM metric_chunks WHERE tier = $1 AND start_ts <= COALESCE(
         (SELECT start_ts FROM metric_chunks WHERE tier = $1 ORDER BY start_ts LIMIT 1 OFFSET $2),
         (SELECT MAX(start_ts) FROM metric_chunks WHERE tier = $1))`,
      [tier, batch - 1],
    );
  }

  private async deleteCounting(text: string, params: Params): Promise<ChunkCount> {
    const { rows } = await this.pool.query<ChunkCount>(`WITH c AS (${text} RETURNING octet_length(data) AS b) SELECT COALESCE(SUM(b), 0) AS bytes, COUNT(*) AS n FROM c`, params);
    return rows[0]!;
  }

  /**
   * Live rows: the closed chunks as the store counts them, and the open chunks. Not the relations'
   * size: PostgreSQL reuses the space of deleted rows (autovacuum) but gives it back to the
   * filesystem only on VACUUM FULL, so a budget on relation sizes would delete everything.
   */
  async diskBytes(tierBytes: number[]): Promise<number> {
    const { rows } = await this.pool.query<{ bytes: number }>('SELECT COALESCE(SUM(octet_length(data)), 0) + COUNT(*) * $1::bigint AS bytes FROM metric_open_chunks', [this.rowOverhead]);
    return tierBytes.reduce((a, b) => a + b, 0) + rows[0]!.bytes;
  }

  async relationBytes(): Promise<number> {
    const { rows } = await this.pool.query<{ bytes: number }>("SELECT (pg_total_relation_size('metric_series') + pg_total_relation_size('metric_chunks') + pg_total_relation_size('metric_open_chunks'))::bigint AS bytes");
    return rows[0]!.bytes;
  }

  /** Nothing to do: autovacuum makes the space of deleted rows reusable. */
  async compact(): Promise<void> {}

  isPassing(err: unknown): boolean {
    if (passingStoreFailure(err)) return true;
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string') return NETWORK_CODES.has(code) || (code.length === 5 && PASSING_CLASSES.has(code.slice(0, 2)));
    // pg's own errors for a connection lost mid-query carry no code.
    return err instanceof Error && /Connection terminated|timeout/i.test(err.message);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      // The connection may be gone (then so is the transaction): the pool then drops it.
      await client.query('ROLLBACK').catch((rollbackErr: Error) => { broken = rollbackErr; });
      throw err;
    } finally {
      client.release(broken);
    }
  }
}

/** The last of the items with the same key (one statement may not update a row twice). */
function lastByKey<T>(items: T[], key: (item: T) => string): T[] {
  return [...new Map(items.map((item) => [key(item), item])).values()];
}

/** Writes split by series into `count` parts (a series' chunks stay together, in their order). */
function splitBySeries(writes: ChunkWrite[], count: number): ChunkWrite[][] {
  const parts: ChunkWrite[][] = Array.from({ length: count }, () => []);
  for (const w of writes) parts[w.seriesId % count]!.push(w);
  return parts.filter((part) => part.length);
}

function slices<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += ROWS_PER_STATEMENT) out.push(items.slice(i, i + ROWS_PER_STATEMENT));
  return out;
}
