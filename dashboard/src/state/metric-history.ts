import { bytes, type MetricSeries, type SeriesValue } from '@dvic/protocol/shared';

/** Series on one time axis (seconds, as uPlot wants), a value or null per time. */
export interface AlignedHistory {
  times: number[];
  values: Map<string, (number | null)[]>;
}

export const emptyHistory = (): AlignedHistory => ({ times: [], values: new Map() });

/** The API's series ([ms, value] points each) on one shared, sorted time axis. */
export function alignSeries(series: { name: MetricSeries['name']; points: number[][] }[]): AlignedHistory {
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => p[0]!)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const values = new Map<string, (number | null)[]>();
  for (const s of series) {
    const row = new Array<number | null>(times.length).fill(null);
    for (const [ts, v] of s.points) row[index.get(ts!)!] = v ?? null;
    values.set(s.name, row);
  }
  return { times: times.map((t) => t / 1000), values };
}

/** Adds one live sample at the right edge and drops what fell off the left (before `from`, ms). */
export function appendSample(h: AlignedHistory, at: number, sample: SeriesValue[], from: number): AlignedHistory {
  const t = at / 1000;
  if (h.times.length > 0 && t <= h.times[h.times.length - 1]!) return h;
  const keep = h.times.findIndex((x) => x >= from / 1000);
  const start = keep === -1 ? h.times.length : keep;
  const n = h.times.length - start;
  const values = new Map<string, (number | null)[]>();
  for (const [name, row] of h.values) values.set(name, [...row.slice(start), null]);
  for (const [name, v] of sample) {
    const row = values.get(name) ?? new Array<number | null>(n + 1).fill(null);
    row[n] = v;
    values.set(name, row);
  }
  return { times: [...h.times.slice(start), t], values };
}

/** Names of the series matching a pattern (`*` stands for any run of characters), sorted. */
export function seriesMatching(h: AlignedHistory, pattern: string): string[] {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return [...h.values.keys()].filter((n) => re.test(n)).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

/** What an axis tick or a legend shows: the value in its unit. */
export function formatValue(v: number | null | undefined, unit: string): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (unit === 'B') return bytes(v);
  if (unit === 'B/s') return `${bytes(v)}/s`;
  const rounded = String(Number(v.toFixed(Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2)));
  return `${rounded}${unit === '' ? '' : unit === '%' || unit === '°C' ? unit : ` ${unit}`}`;
}

/** A chart's points as CSV: a time column (ISO 8601, UTC) and one column per series. */
export function toCsv(times: number[], series: { label: string; values: (number | null)[] }[]): string {
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [['time', ...series.map((s) => s.label)].map(quote).join(',')];
  times.forEach((t, i) => lines.push([new Date(t * 1000).toISOString(), ...series.map((s) => (s.values[i] ?? '') === '' ? '' : String(s.values[i]))].join(',')));
  return `${lines.join('\n')}\n`;
}
