import { ChunkEncoder } from './chunk-codec.js';

/**
 * What one series holds in memory: per tier, its open chunk and the closed ones not yet written,
 * and the minute and hour buckets being rolled up (min, max, mean, last — as Netdata's tiers).
 */

/** Points a raw chunk takes before it closes, and the longest time it spans. */
export const RAW_CHUNK_POINTS = 120;
export const RAW_CHUNK_SPAN_MS = 30 * 60_000;
/** Rollup chunks: an hour of minutes, a day of hours (short: open chunks are rewritten at each flush). */
export const ROLLUP_CHUNK_POINTS = [0, 60, 24];
/** Closed chunks a series keeps per tier while the disk refuses them; older ones are dropped. */
const MAX_UNWRITTEN = 16;

const ONE = [0];

/** Rollup columns, in the order chunks store them. */
export const ROLLUP_COLUMNS = ['min', 'max', 'mean', 'last', 'count'] as const;

export class Chunk {
  readonly ts: number[] = [];
  readonly columns: number[][];
  dirty = true;
  closed = false;
  private readonly encoder: ChunkEncoder;

  constructor(width: number) {
    this.columns = Array.from({ length: width }, () => []);
    this.encoder = new ChunkEncoder(width);
  }

  /** The chunk's stored form (encoded as it filled). */
  bytes(): Buffer {
    return this.encoder.bytes();
  }

  get start(): number {
    return this.ts[0]!;
  }

  get end(): number {
    return this.ts[this.ts.length - 1]!;
  }

  push(ts: number, values: number[]): void {
    this.ts.push(ts);
    for (let i = 0; i < values.length; i++) this.columns[i]!.push(values[i]!);
    this.encoder.push(ts, values);
    this.dirty = true;
  }

  /** push() of a one-column (raw) point, without an array. */
  pushOne(ts: number, value: number): void {
    this.ts.push(ts);
    this.columns[0]!.push(value);
    ONE[0] = value;
    this.encoder.push(ts, ONE);
    this.dirty = true;
  }
}

export class Bucket {
  min: number;
  max: number;
  sum: number;
  count: number;
  last: number;

  constructor(readonly start: number, value: number, count = 1) {
    this.min = value;
    this.max = value;
    this.sum = value * count;
    this.count = count;
    this.last = value;
  }

  add(value: number): void {
    this.min = Math.min(this.min, value);
    this.max = Math.max(this.max, value);
    this.sum += value;
    this.count++;
    this.last = value;
  }

  merge(other: Bucket): void {
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
    this.sum += other.sum;
    this.count += other.count;
    this.last = other.last;
  }

  static from(start: number, other: Bucket): Bucket {
    const b = new Bucket(start, other.min);
    b.max = other.max;
    b.sum = other.sum;
    b.count = other.count;
    b.last = other.last;
    return b;
  }

  /** The rollup point; the mean kept to thousandths (what the codec stores compactly). */
  columns(): number[] {
    return [this.min, this.max, Math.round((1000 * this.sum) / this.count) / 1000, this.last, this.count];
  }
}

const MINUTE = 60_000;
const HOUR = 3_600_000;

export class SeriesBuffer {
  lastTs = Number.NEGATIVE_INFINITY;
  /** Per tier (raw, 1m, 1h): chunks in memory by start, open last. */
  readonly chunks: Chunk[][] = [[], [], []];
  private minute: Bucket | null = null;
  private hour: Bucket | null = null;
  /** Samples dropped because the disk refused their chunk for too long. */
  dropped = 0;
  /** Chunks closed since the store last asked (closedSince()). */
  private closedCount = 0;

  /** Whether this series holds so many closed chunks that a flush is due before it has to drop some. */
  get crowded(): boolean {
    return this.chunks.some((list) => list.length > MAX_UNWRITTEN / 2);
  }

  /** Chunks closed since the last call: they wait in memory until a flush writes them. */
  closedSince(): number {
    const n = this.closedCount;
    this.closedCount = 0;
    return n;
  }

  /** `id`: the series' row in storage; null until the first flush creates it (append never waits on storage). */
  constructor(public id: number | null, readonly name: string) {}

  add(ts: number, value: number): boolean {
    if (!(ts > this.lastTs)) return false;
    this.lastTs = ts;
    const raw = this.open(0, 1);
    const full = raw.ts.length >= RAW_CHUNK_POINTS || (raw.ts.length > 0 && ts - raw.start > RAW_CHUNK_SPAN_MS);
    (full ? this.reopen(0, 1) : raw).pushOne(ts, value);
    const start = Math.floor(ts / MINUTE) * MINUTE;
    if (this.minute && this.minute.start !== start) this.finishMinute();
    if (this.minute) this.minute.add(value);
    else this.minute = new Bucket(start, value);
    return true;
  }

  /** The buckets still open as points of their tier (a chart's right edge), or null. */
  partial(tier: number): Bucket | null {
    if (tier === 1) return this.minute;
    if (tier !== 2) return null;
    if (!this.minute) return this.hour;
    const hourStart = Math.floor(this.minute.start / HOUR) * HOUR;
    const merged = this.hour && this.hour.start === hourStart ? Bucket.from(hourStart, this.hour) : null;
    if (!merged) return Bucket.from(hourStart, this.minute);
    merged.merge(this.minute);
    return merged;
  }

  /** Closes the open buckets into their chunks (before the store closes). */
  finishBuckets(): void {
    if (this.minute) this.finishMinute();
    if (this.hour) this.pushRollup(2, this.hour);
    this.hour = null;
  }

  /** Whether it holds nothing in memory (no chunk, no open bucket). */
  get empty(): boolean {
    return this.chunks.every((list) => list.length === 0) && !this.minute && !this.hour;
  }

  /** An idle series: its open buckets and chunks closed, so the next flush writes all it holds. */
  closeAll(): void {
    this.finishBuckets();
    for (const list of this.chunks) {
      const last = list[list.length - 1];
      if (!last || last.closed) continue;
      if (last.ts.length === 0) list.pop();
      else {
        last.closed = true;
        last.dirty = true;
      }
    }
  }

  /** An open chunk as the last flush left it (the server restarted): samples go on into it. */
  resume(tier: number, chunk: Chunk): void {
    chunk.dirty = false;
    this.chunks[tier]!.push(chunk);
    if (tier === 0) this.lastTs = chunk.end;
  }

  /**
   * While storage refuses writes: the oldest closed chunks beyond MAX_UNWRITTEN per tier are given
   * up (counted in `dropped`), so memory stays bounded. Not before: a flush that simply has not run
   * yet (append() never waits on storage) loses nothing.
   */
  trim(): void {
    for (const list of this.chunks) {
      while (list.length > MAX_UNWRITTEN + 1 && list[0]!.closed) this.dropped += list.shift()!.ts.length;
    }
  }

  /**
   * A chunk was written as it was when the flush took it (`points` points, closed or not): clean
   * now, and forgotten when closed. One that grew or closed while the write was under way stays
   * dirty for the next flush.
   */
  written(tier: number, chunk: Chunk, points: number, closed: boolean): void {
    if (chunk.ts.length !== points || chunk.closed !== closed) return;
    chunk.dirty = false;
    if (chunk.closed) this.chunks[tier] = this.chunks[tier]!.filter((c) => c !== chunk);
  }

  private finishMinute(): void {
    const minute = this.minute!;
    this.minute = null;
    this.pushRollup(1, minute);
    const hourStart = Math.floor(minute.start / HOUR) * HOUR;
    if (this.hour && this.hour.start !== hourStart) {
      this.pushRollup(2, this.hour);
      this.hour = null;
    }
    if (this.hour) this.hour.merge(minute);
    else this.hour = Bucket.from(hourStart, minute);
  }

  private pushRollup(tier: number, bucket: Bucket): void {
    const open = this.open(tier, ROLLUP_COLUMNS.length);
    (open.ts.length >= ROLLUP_CHUNK_POINTS[tier]! ? this.reopen(tier, ROLLUP_COLUMNS.length) : open).push(bucket.start, bucket.columns());
  }

  private open(tier: number, width: number): Chunk {
    const list = this.chunks[tier]!;
    const last = list[list.length - 1];
    return last && !last.closed ? last : this.reopen(tier, width);
  }

  private reopen(tier: number, width: number): Chunk {
    const list = this.chunks[tier]!;
    const last = list[list.length - 1];
    if (last) {
      last.closed = true;
      last.dirty = true;
      this.closedCount++;
    }
    const chunk = new Chunk(width);
    list.push(chunk);
    return chunk;
  }
}
