import type { SeriesValue } from '@dvic/protocol';

/**
 * Where metric history lives: the server's own SQLite file (sqlite-metric-store.ts) or, for
 * scale-out, PostgreSQL tables (postgres-metric-store.ts). A source is what the numbers come from:
 * `node:<id>` or `device:<id>`. Samples are buffered in memory (append is synchronous, it never
 * waits on storage); everything that reads or writes storage returns a Promise.
 */
export interface MetricStore {
  /** Samples of one source at one time (ms since the epoch); a series older than its last sample is skipped. */
  append(source: string, ts: number, values: SeriesValue[]): void;
  /** Series of one source whose names match (exact, or a prefix ending in `*`), over [from, to]. */
  query(query: MetricQuery): Promise<MetricAnswer>;
  /** Forgets a source (a node or device removed): its series in memory and in storage. */
  removeSource(source: string): Promise<void>;
  /** Names of the series one source has. */
  seriesNames(source: string): Promise<string[]>;
  /** Deletes what is past each tier's age or byte cap and the total budget, oldest first. */
  enforceRetention(now: number): Promise<RetentionReport>;
  /** Writes what waits in memory (failures keep it for the next flush); `all`: the open chunks too, now. */
  flush(all?: boolean): Promise<void>;
  /** Bytes the history takes in storage (SQLite: pages in use; PostgreSQL: live rows). */
  diskBytes(): Promise<number>;
  close(): Promise<void>;
}

export type TierName = 'raw' | '1m' | '1h';

export interface MetricQuery {
  source: string;
  names: string[];
  from: number;
  to: number;
  /** Wished spacing of points in ms; at least (to - from) / MAX_POINTS. */
  step?: number;
  /** Tiers are chosen relative to this time (their retention); default Date.now(). */
  now?: number;
}

export interface SeriesPoints {
  name: string;
  points: [number, number][];
}

export interface MetricAnswer {
  tier: TierName;
  /** Spacing of the points in ms (0: raw samples as they came). */
  step: number;
  series: SeriesPoints[];
}

export interface RetentionReport {
  deletedChunks: number;
  bytes: number;
}

/** A tier: how fine its points are, how long and how many bytes it keeps. */
export interface TierPolicy {
  name: TierName;
  resolutionMs: number;
  retentionMs: number;
  maxBytes: number;
}

/** At most about this many points per series in an answer. */
export const MAX_POINTS = 1000;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * Default tiers (issue 15): raw 48 h, 1-minute 30 days, 1-hour 2 years; the budget
 * (DVIC_METRICS_MAX_MB) is shared 50/35/15, and enforced as a whole too.
 */
export function defaultTiers(budgetBytes: number): TierPolicy[] {
  return [
    { name: 'raw', resolutionMs: 0, retentionMs: 2 * DAY, maxBytes: 0.5 * budgetBytes },
    { name: '1m', resolutionMs: 60_000, retentionMs: 30 * DAY, maxBytes: 0.35 * budgetBytes },
    { name: '1h', resolutionMs: HOUR, retentionMs: 730 * DAY, maxBytes: 0.15 * budgetBytes },
  ];
}

/**
 * The tier an answer reads: the coarsest whose points are at most twice the wished spacing (so a
 * 7-day chart reads minutes and a 30-day chart hours, never raw samples), moved to a coarser one
 * when the range starts before the tier's retention or before what its byte cap left of it
 * (`oldest`: the first time each tier holds on disk).
 */
export function pickTier(tiers: TierPolicy[], from: number, to: number, step: number, now: number, oldest: number[] = []): { index: number; step: number } {
  const wished = Math.max(step, Math.ceil((to - from) / MAX_POINTS));
  let index = 0;
  tiers.forEach((t, i) => {
    if (t.resolutionMs <= 2 * wished) index = i;
  });
  // The byte caps may have cut a tier shorter than its age limit: a coarser tier that reaches
  // further back (by more than its own resolution) answers then.
  const cutShort = (i: number) => from < (oldest[i] ?? Number.POSITIVE_INFINITY) && (oldest[i + 1] ?? Number.POSITIVE_INFINITY) + tiers[i + 1]!.resolutionMs < (oldest[i] ?? Number.POSITIVE_INFINITY);
  while (index < tiers.length - 1 && (from < now - tiers[index]!.retentionMs || cutShort(index))) index++;
  const res = tiers[index]!.resolutionMs;
  return { index, step: res > 0 ? Math.max(res, Math.ceil(wished / res) * res) : wished };
}
