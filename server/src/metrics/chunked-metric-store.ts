import type { SeriesValue } from '@dvic/protocol';
import { decodeChunk, type ChunkPoints } from './chunk-codec.js';
import type { ChunkRow, ChunkStorage, ChunkWrite, OpenChunkRow, StoredState, TierCount } from './chunk-storage.js';
import { pickTier, type MetricAnswer, type MetricQuery, type MetricStore, type RetentionReport, type SeriesPoints, type TierPolicy } from './metric-store.js';
import { Chunk, SeriesBuffer } from './series-buffer.js';

/** Closed chunks waiting in memory that make append() flush at once. */
const FLUSH_AFTER_CLOSED = 20_000;
const RETRY_FLUSH_MS = 5000;
/** How often the open chunks are written (see flush()). */
const OPEN_WRITE_MS = 60_000;
/** Share of a tier's chunks deleted per step while a cap is exceeded. */
const DELETE_FRACTION = 0.02;

/** A chunk a flush writes, as it was when the flush took it. */
interface PendingWrite {
  buffer: SeriesBuffer;
  tier: number;
  chunk: Chunk;
  points: number;
  closed: boolean;
  data: Buffer | null;
}

/** A series a query reads: its buffer when this process holds it, its id when it has a row. */
interface SeriesRef {
  name: string;
  buffer: SeriesBuffer | undefined;
  id: number | null;
}

/** What a query takes from memory before it reads storage (so a chunk written meanwhile is read once). */
interface MemorySnapshot {
  chunks: ChunkPoints[];
  starts: Set<number>;
}

/**
 * Metric history as chunks of compressed points per series and tier (raw, 1 minute, 1 hour), over
 * a ChunkStorage (the SQLite file or PostgreSQL tables). Samples wait in memory in their open chunk
 * and are written by flush(); a query reads the written chunks and the ones in memory, so a chart
 * shows the newest sample at once. A storage that refuses writes (full disk, database away): chunks
 * wait in memory (a bounded number per series) and are written once it accepts them again.
 *
 * Storage writes (flush, removal, retention) run one after the other, so a removal never overtakes
 * the flush of the series it removes; queries read alongside them.
 */
export class ChunkedMetricStore implements MetricStore {
  private readonly bySource = new Map<string, Map<string, SeriesBuffer>>();
  private readonly tierBytes: number[];
  private readonly tierRows: number[];
  private closedWaiting = 0;
  private burstFlushing = false;
  private openWrittenAt = 0;
  /** After a refused write, append() does not try again before this (the flush timer does). */
  private retryFlushAt = 0;
  /** Whether the last flush was refused: then each series keeps a bounded number of chunks in memory. */
  private refused = false;
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly storage: ChunkStorage, private readonly tiers: TierPolicy[], private readonly budgetBytes: number, state: StoredState) {
    for (const s of state.series) this.remember(s.source, s.name, s.id);
    this.resumeOpenChunks(state.open);
    this.tierBytes = tiers.map(() => 0);
    this.tierRows = tiers.map(() => 0);
    this.count(state.tiers);
  }

  append(source: string, ts: number, values: SeriesValue[]): void {
    for (const [name, value] of values) {
      const buffer = this.bySource.get(source)?.get(name) ?? this.remember(source, name, null);
      buffer.add(ts, value);
      if (this.refused) buffer.trim();
      this.closedWaiting += buffer.closedSince();
      if (buffer.crowded) this.closedWaiting = FLUSH_AFTER_CLOSED;
    }
    // A burst (a backfill, a bench) writes as it goes rather than holding chunks in memory. A failure
    // only postpones: the flush timer tries again and reports it.
    if (this.closedWaiting >= FLUSH_AFTER_CLOSED && !this.burstFlushing && Date.now() >= this.retryFlushAt) {
      this.burstFlushing = true;
      this.flush().catch(() => undefined).finally(() => { this.burstFlushing = false; });
    }
  }

  removeSource(source: string): Promise<void> {
    // Memory first: storage that refuses the delete still frees the memory (the rows go at the next removal).
    this.bySource.delete(source);
    return this.serially(async () => this.uncount(await this.storage.removeSource(source)));
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

  async seriesNames(source: string): Promise<string[]> {
    return (await this.seriesOf(source)).map((s) => s.name);
  }

  async query(q: MetricQuery): Promise<MetricAnswer> {
    const now = q.now ?? Date.now();
    // Both at once: on PostgreSQL each is a round trip.
    const [starts, known] = await Promise.all([this.storage.oldestStarts(this.tiers.length), this.seriesOf(q.source)]);
    const oldest = starts.map((t) => t ?? Number.POSITIVE_INFINITY);
    const { index, step } = pickTier(this.tiers, q.from, q.to, q.step ?? 0, now, oldest);
    const wanted = known.filter(({ name }) => q.names.length === 0 || q.names.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p)));
    const series = await this.read(wanted, index, q.from, q.to, step);
    return { tier: this.tiers[index]!.name, step: this.tiers[index]!.resolutionMs === 0 && step <= 0 ? 0 : step, series };
  }

  /**
   * Closed chunks are written at every flush; the open ones (rewritten whole each time) at most
   * every OPEN_WRITE_MS, or when `all` (closing): a crash loses at most that much of the newest samples.
   */
  flush(all = false): Promise<void> {
    return this.serially(() => this.writeWaiting(all));
  }

  enforceRetention(now: number): Promise<RetentionReport> {
    return this.serially(() => this.retain(now));
  }

  diskBytes(): Promise<number> {
    return this.storage.diskBytes(this.tierBytes);
  }

  /** Bytes each tier's chunks take (data and row), as the caps count them. */
  tierSizes(): number[] {
    return [...this.tierBytes];
  }

  async close(): Promise<void> {
    for (const sources of this.bySource.values()) for (const buffer of sources.values()) buffer.finishBuckets();
    try {
      await this.flush(true);
    } finally {
      await this.storage.close();
    }
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.writing.then(work, work);
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async writeWaiting(all: boolean): Promise<void> {
    this.closedWaiting = 0;
    const now = Date.now();
    const withOpen = all || now - this.openWrittenAt >= OPEN_WRITE_MS;
    const pending: PendingWrite[] = [];
    for (const sources of this.bySource.values()) {
      for (const buffer of sources.values()) {
        buffer.chunks.forEach((list, tier) => {
          for (const chunk of list) {
            if (chunk.dirty && (withOpen || chunk.closed)) pending.push({ buffer, tier, chunk, points: chunk.ts.length, closed: chunk.closed, data: chunk.ts.length > 0 ? chunk.bytes() : null });
          }
        });
      }
    }
    if (withOpen) this.openWrittenAt = now;
    if (pending.length === 0) return;
    let ready: PendingWrite[];
    try {
      await this.createSeries(pending.map((p) => p.buffer));
      // Without an id: its source was removed while the flush waited; its chunks go with it.
      ready = pending.filter((p) => p.buffer.id !== null);
      if (ready.length > 0) await this.storage.write(ready.map(toWrite));
    } catch (err) {
      this.retryFlushAt = Date.now() + RETRY_FLUSH_MS;
      this.refused = true;
      if (!this.storage.isPassing(err)) throw err;
      return;
    }
    this.refused = false;
    for (const p of ready) {
      if (p.data && p.closed) {
        this.tierBytes[p.tier]! += p.data.length + this.storage.rowOverhead;
        this.tierRows[p.tier]!++;
      }
      p.buffer.written(p.tier, p.chunk, p.points, p.closed);
    }
  }

  /** Rows for the series that have none yet (their first flush). */
  private async createSeries(buffers: SeriesBuffer[]): Promise<void> {
    if (buffers.every((b) => b.id !== null)) return;
    const sourceOf = new Map<SeriesBuffer, string>();
    for (const [source, sources] of this.bySource) for (const buffer of sources.values()) if (buffer.id === null) sourceOf.set(buffer, source);
    // A buffer no longer in memory belongs to a source removed meanwhile: it gets no row.
    const fresh = [...new Set(buffers)].filter((b) => b.id === null && sourceOf.has(b));
    if (fresh.length === 0) return;
    const rows = await this.storage.seriesIds(fresh.map((b) => ({ source: sourceOf.get(b)!, name: b.name })));
    const ids = new Map(rows.map((r) => [`${r.source}\0${r.name}`, r.id]));
    for (const buffer of fresh) buffer.id = ids.get(`${sourceOf.get(buffer)!}\0${buffer.name}`) ?? null;
  }

  private async retain(now: number): Promise<RetentionReport> {
    await this.evictIdle(now);
    if (this.storage.shared) {
      // Other replicas write and delete too: start from what the database holds.
      this.tierBytes.fill(0);
      this.tierRows.fill(0);
      this.count(await this.storage.tierCounts());
    }
    const report: RetentionReport = { deletedChunks: 0, bytes: 0 };
    for (const [i, tier] of this.tiers.entries()) this.deleted(i, await this.storage.deleteBefore(i, now - tier.retentionMs), report);
    for (const [i, tier] of this.tiers.entries()) {
      while (this.tierBytes[i]! > tier.maxBytes && (await this.deleteOldest(i, report)));
    }
    for (let guard = 0; guard < 10_000 && (await this.diskBytes()) > this.budgetBytes; guard++) {
      const fullest = this.tierBytes.map((b, i) => b / Math.max(1, this.tiers[i]!.maxBytes)).reduce((best, r, i, all) => (r > all[best]! ? i : best), 0);
      if (!(await this.deleteOldest(fullest, report))) break;
    }
    if (report.deletedChunks > 0) await this.storage.compact();
    return report;
  }

  /**
   * Series without a sample for longer than the raw tier keeps: what they hold in memory is written
   * and let go (only their name and id stay, so queries still read their rollups from storage).
   */
  private async evictIdle(now: number): Promise<void> {
    const cutoff = now - this.tiers[0]!.retentionMs;
    const idle: SeriesBuffer[] = [];
    for (const sources of this.bySource.values()) for (const buffer of sources.values()) if (buffer.lastTs < cutoff && !buffer.empty) idle.push(buffer);
    if (idle.length === 0) return;
    for (const buffer of idle) buffer.closeAll();
    await this.writeWaiting(false);
    try {
      await this.storage.dropOpen(idle.filter((b) => b.empty && b.id !== null).map((b) => b.id!));
    } catch (err) {
      if (!this.storage.isPassing(err)) throw err;
    }
  }

  /** The oldest batch of chunks of a tier; false when it has none. */
  private async deleteOldest(tier: number, report: RetentionReport): Promise<boolean> {
    const batch = Math.max(1, Math.ceil(this.tierRows[tier]! * DELETE_FRACTION));
    return this.deleted(tier, await this.storage.deleteOldest(tier, batch), report) > 0;
  }

  private deleted(tier: number, gone: { bytes: number; n: number }, report: RetentionReport): number {
    if (gone.n === 0) return 0;
    this.uncount([{ tier, ...gone }]);
    report.deletedChunks += gone.n;
    report.bytes += gone.bytes + gone.n * this.storage.rowOverhead;
    return gone.n;
  }

  private count(tiers: TierCount[]): void {
    for (const t of tiers) {
      this.tierBytes[t.tier]! += t.bytes + t.n * this.storage.rowOverhead;
      this.tierRows[t.tier]! += t.n;
    }
  }

  private uncount(tiers: TierCount[]): void {
    for (const t of tiers) {
      this.tierBytes[t.tier] = Math.max(0, this.tierBytes[t.tier]! - (t.bytes + t.n * this.storage.rowOverhead));
      this.tierRows[t.tier] = Math.max(0, this.tierRows[t.tier]! - t.n);
    }
  }

  /** The series of a source, by name: those in memory, and (shared storage) those other replicas wrote. */
  private async seriesOf(source: string): Promise<SeriesRef[]> {
    const refs = new Map<string, SeriesRef>();
    for (const [name, buffer] of this.bySource.get(source) ?? []) refs.set(name, { name, buffer, id: buffer.id });
    if (this.storage.shared) {
      for (const row of await this.storage.listSeries(source)) {
        const known = refs.get(row.name);
        if (known) known.id ??= row.id;
        else refs.set(row.name, { name: row.name, buffer: undefined, id: row.id });
      }
    }
    return [...refs.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private async read(wanted: SeriesRef[], tier: number, from: number, to: number, step: number): Promise<SeriesPoints[]> {
    // Memory before storage: a chunk a flush writes meanwhile is then in the snapshot, or in storage.
    const memory = wanted.map((s) => (s.buffer ? snapshot(s.buffer, tier) : null));
    const ids = wanted.flatMap((s) => (s.id === null ? [] : [s.id]));
    const rows = ids.length > 0 ? await this.storage.read(ids, tier, from, to) : new Map<number, ChunkRow[]>();
    // Series held by another replica: their open chunk as it last wrote it.
    const elsewhere = wanted.flatMap((s, i) => (memory[i] === null && s.id !== null ? [s.id] : []));
    const open = elsewhere.length > 0 ? await this.storage.readOpen(elsewhere, tier) : new Map<number, ChunkRow[]>();
    return wanted.map((s, i) => {
      const inMemory = memory[i] ?? { chunks: [], starts: new Set<number>() };
      const stored = [...(s.id === null ? [] : rows.get(s.id) ?? []), ...(s.id === null ? [] : open.get(s.id) ?? [])]
        .filter((row) => !inMemory.starts.has(row.start_ts))
        .map((row) => decodeChunk(row.data, row.start_ts));
      return { name: s.name, points: this.points([...stored, ...inMemory.chunks], tier, from, to, step) };
    });
  }

  private points(chunks: ChunkPoints[], tier: number, from: number, to: number, step: number): [number, number][] {
    const out: [number, number, number][] = [];
    // Rollups answer their mean, weighted by the samples it stands for.
    const mean = tier === 0 ? 0 : 2;
    for (const chunk of chunks) {
      for (let i = 0; i < chunk.ts.length; i++) {
        const ts = chunk.ts[i]!;
        if (ts >= from && ts <= to) out.push([ts, chunk.columns[mean]![i]!, tier === 0 ? 1 : chunk.columns[4]![i]!]);
      }
    }
    out.sort((a, b) => a[0] - b[0]);
    return downsample(out, step, this.tiers[tier]!.resolutionMs);
  }

  private resumeOpenChunks(rows: OpenChunkRow[]): void {
    const byId = new Map<number, SeriesBuffer>();
    for (const sources of this.bySource.values()) for (const buffer of sources.values()) if (buffer.id !== null) byId.set(buffer.id, buffer);
    for (const row of [...rows].sort((a, b) => a.tier - b.tier)) {
      const points = decodeChunk(row.data, row.start_ts);
      const chunk = new Chunk(points.columns.length);
      points.ts.forEach((ts, i) => chunk.push(ts, points.columns.map((c) => c[i]!)));
      if (chunk.ts.length > 0) byId.get(row.series_id)?.resume(row.tier, chunk);
    }
  }

  private remember(source: string, name: string, id: number | null): SeriesBuffer {
    let sources = this.bySource.get(source);
    if (!sources) this.bySource.set(source, (sources = new Map()));
    const buffer = new SeriesBuffer(id, name);
    sources.set(name, buffer);
    return buffer;
  }
}

function toWrite(p: PendingWrite): ChunkWrite {
  return { seriesId: p.buffer.id!, tier: p.tier, start: p.chunk.start, end: p.chunk.end, closed: p.closed, data: p.data };
}

/** A series' chunks of one tier in memory and its open bucket, as they are now (chunks keep filling). */
function snapshot(buffer: SeriesBuffer, tier: number): MemorySnapshot {
  const chunks: ChunkPoints[] = buffer.chunks[tier]!.filter((c) => c.ts.length > 0).map((c) => ({ ts: c.ts.slice(), columns: c.columns.map((col) => col.slice()) }));
  const starts = new Set(chunks.map((c) => c.ts[0]!));
  const partial = buffer.partial(tier);
  if (partial) chunks.push({ ts: [partial.start], columns: partial.columns().map((v) => [v]) });
  return { chunks, starts };
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
