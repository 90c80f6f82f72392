import { useEffect, useMemo, useState } from 'preact/hooks';
import { hardwareSeries, type DemoView } from '@dvic/protocol/shared';
import { api, call, errorText } from '../api/client.js';
import { Chart, type ChartMarker } from '../components/chart.js';
import { alignSeries, appendSample, emptyHistory, seriesMatching, type AlignedHistory } from '../state/metric-history.js';
import type { PageNode } from '../state/use-node-page.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The range picker's choices; "custom" takes two times (or a range dragged over a chart). */
export const RANGES: [label: string, ms: number][] = [['15 min', 15 * MINUTE], ['1 h', HOUR], ['6 h', 6 * HOUR], ['24 h', DAY], ['7 d', 7 * DAY], ['30 d', 30 * DAY]];
/** Up to this range, live samples extend the charts; longer ones (rollups) are fetched again each minute. */
const LIVE_APPEND_MAX_MS = 6 * HOUR;

export type Range = { kind: 'last'; ms: number } | { kind: 'custom'; from: number; to: number };

/** The charts of one node: a chart per family of series, its unit, and the series (patterns) it shows. */
const CHARTS: { title: string; unit: string; max?: number; series: string[]; label: (name: string) => string }[] = [
  { title: 'CPU', unit: '%', max: 100, series: ['cpu.total_pct', 'cpu.per_core_pct.*'], label: (n) => (n === 'cpu.total_pct' ? 'total' : `core ${n.split('.').pop()}`) },
  { title: 'Memory', unit: 'B', series: ['memory.used_bytes', 'memory.available_bytes', 'memory.swap_used_bytes'], label: (n) => n.slice('memory.'.length).replace('_bytes', '') },
  { title: 'Load', unit: '', series: ['load.load1', 'load.load5', 'load.load15'], label: (n) => n.slice('load.'.length) },
  { title: 'Temperatures', unit: '°C', series: ['temperatures.*.celsius'], label: (n) => n.slice('temperatures.'.length, -'.celsius'.length) },
  { title: 'Network', unit: 'B/s', series: ['network.*.rx_bytes_per_s', 'network.*.tx_bytes_per_s'], label: (n) => n.slice('network.'.length).replace('_bytes_per_s', '') },
  { title: 'Disk used', unit: '%', max: 100, series: ['filesystems.*.used_pct'], label: (n) => n.slice('filesystems.'.length, -'.used_pct'.length) },
  { title: 'Demo lines', unit: '/s', series: ['demos.*.lines_per_s', 'demos.*.errors_per_s'], label: (n) => n.slice('demos.'.length).replace('_per_s', '') },
  { title: 'Processes', unit: '', series: ['processes'], label: () => 'processes' },
];

export const bounds = (range: Range, now: number): [number, number] => (range.kind === 'custom' ? [range.from, range.to] : [now - range.ms, now]);

/** Demo starts and deaths in the range, marked on every chart's time axis. */
function demoMarkers(demos: DemoView[] | undefined): ChartMarker[] {
  const out: ChartMarker[] = [];
  for (const d of demos ?? []) {
    if (d.started_at) out.push({ at: d.started_at / 1000, kind: 'started', label: `${d.demo} started` });
    if (d.exited_at) out.push({ at: d.exited_at / 1000, kind: 'died', label: `${d.demo} died` });
  }
  return out;
}

/** The node page's metric history: range picker, charts from the server's history, extended live. */
export function NodeMetrics({ node }: { node: PageNode }) {
  const [range, setRange] = useState<Range>({ kind: 'last', ms: HOUR });
  const [history, setHistory] = useState<AlignedHistory>(emptyHistory);
  const [window, setWindow] = useState<[number, number]>(() => bounds(range, Date.now()));
  const [error, setError] = useState('');
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let stale = false;
    const [from, to] = bounds(range, Date.now());
    call(api.GET('/api/v1/nodes/{id}/metrics', { params: { path: { id: node.id }, query: { from: String(Math.round(from)), to: String(Math.round(to)) } } }))
      .then((answer) => {
        if (stale) return;
        setError('');
        setWindow([from, to]);
        setHistory(alignSeries(answer.series));
      })
      .catch((err: unknown) => { if (!stale) setError(errorText(err, 'the history could not be loaded')); });
    return () => { stale = true; };
  }, [node.id, range, tick]);

  // Live right edge: short ranges take each sample as it comes; long ones are fetched again each minute.
  useEffect(() => {
    if (range.kind !== 'last' || !node.hardware || !node.hardware_at) return;
    if (range.ms > LIVE_APPEND_MAX_MS) return;
    const at = node.hardware_at;
    setWindow([at - range.ms, at]);
    setHistory((h) => appendSample(h, at, hardwareSeries(node.hardware!), at - range.ms));
  }, [node.hardware_at]);
  useEffect(() => {
    if (range.kind !== 'last' || range.ms <= LIVE_APPEND_MAX_MS) return undefined;
    const timer = setInterval(() => setTick((t) => t + 1), MINUTE);
    return () => clearInterval(timer);
  }, [range]);

  const markers = useMemo(() => demoMarkers(node.demos), [node.demos]);
  const shown: [number, number] = [window[0] / 1000, window[1] / 1000];
  const zoom = (from: number, to: number) => setRange({ kind: 'custom', from, to });
  return (
    <section class="node-metrics" aria-label="Metric history">
      <RangePicker range={range} onChange={setRange} />
      {error && <p role="alert" class="error">{error}</p>}
      <div class="charts">
        {CHARTS.map((c) => {
          const names = c.series.flatMap((p) => seriesMatching(history, p));
          if (names.length === 0) return null;
          const series = names.map((n) => ({ label: c.label(n), values: history.values.get(n)! }));
          return <Chart key={c.title} title={c.title} unit={c.unit} max={c.max} times={history.times} series={series} range={shown} onZoom={zoom} markers={markers} />;
        })}
      </div>
    </section>
  );
}

/** epoch ms as a datetime-local input value (local time), and back. */
const toLocalInput = (ms: number) => new Date(ms - new Date(ms).getTimezoneOffset() * MINUTE).toISOString().slice(0, 16);
const fromLocalInput = (value: string) => new Date(value).getTime();

export function RangePicker({ range, onChange }: { range: Range; onChange: (r: Range) => void }) {
  const [custom, setCustom] = useState(range.kind === 'custom');
  const [from, to] = bounds(range, Date.now());
  const apply = (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget as HTMLFormElement);
    const f = fromLocalInput(String(data.get('from')));
    const t = fromLocalInput(String(data.get('to')));
    if (Number.isFinite(f) && Number.isFinite(t) && f < t) onChange({ kind: 'custom', from: f, to: t });
  };
  return (
    <div class="range-picker" role="group" aria-label="Time range">
      {RANGES.map(([label, ms]) => (
        <button key={label} type="button" aria-pressed={!custom && range.kind === 'last' && range.ms === ms} onClick={() => { setCustom(false); onChange({ kind: 'last', ms }); }}>{label}</button>
      ))}
      <button type="button" aria-pressed={custom || range.kind === 'custom'} onClick={() => setCustom(true)}>custom</button>
      {(custom || range.kind === 'custom') && (
        // Keyed by the range, not by its bounds now: a re-render (a live sample every second) must not reset what is being typed.
        <form onSubmit={apply} key={range.kind === 'custom' ? `${range.from}-${range.to}` : `last-${range.ms}`}>
          <label>From <input type="datetime-local" name="from" defaultValue={toLocalInput(from)} required /></label>
          <label>To <input type="datetime-local" name="to" defaultValue={toLocalInput(to)} required /></label>
          <button type="submit">Show</button>
        </form>
      )}
    </div>
  );
}
