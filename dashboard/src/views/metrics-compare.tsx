import { useEffect, useState } from 'preact/hooks';
import { api, call, errorText } from '../api/client.js';
import { Chart } from '../components/chart.js';
import { alignSeries, emptyHistory, type AlignedHistory } from '../state/metric-history.js';
import { useNodes } from '../state/use-live.js';
import { bounds, RangePicker, type Range } from './node-metrics.js';

const SUGGESTED = ['temperatures.thermal_zone0.celsius', 'cpu.total_pct', 'memory.used_bytes', 'memory.available_bytes', 'load.load1', 'filesystems./.used_pct', 'network.eth0.rx_bytes_per_s', 'processes'];
const unitOf = (series: string) => (series.endsWith('_pct') ? '%' : series.endsWith('.celsius') ? '°C' : series.endsWith('_bytes_per_s') ? 'B/s' : series.endsWith('_bytes') ? 'B' : series.endsWith('_per_s') ? '/s' : '');

/** One series across several nodes (e.g. the temperature of every Pi in a room): GET /api/v1/metrics/query. */
export function MetricsCompare() {
  const params = new URLSearchParams(location.search);
  const [series, setSeries] = useState(params.get('series') ?? SUGGESTED[0]!);
  const [label, setLabel] = useState(params.get('label') ?? '');
  const [range, setRange] = useState<Range>({ kind: 'last', ms: 3_600_000 });
  const [history, setHistory] = useState<AlignedHistory>(emptyHistory);
  const [shown, setShown] = useState<[number, number]>([0, 0]);
  const [error, setError] = useState('');
  const nodes = useNodes();

  useEffect(() => {
    const [from, to] = bounds(range, Date.now());
    const query = { series, from: String(Math.round(from)), to: String(Math.round(to)), ...(label.includes('=') ? { label } : {}) };
    call(api.GET('/api/v1/metrics/query', { params: { query } }))
      .then((answer) => {
        setError('');
        setShown([from / 1000, to / 1000]);
        setHistory(alignSeries(answer.series.map((s) => ({ name: s.node ?? s.name, points: s.points }))));
      })
      .catch((err: unknown) => setError(errorText(err, 'the comparison could not be loaded')));
  }, [series, label, range]);

  const submit = (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget as HTMLFormElement);
    setSeries(String(data.get('series')).trim());
    setLabel(String(data.get('label')).trim());
  };
  // Keyed by node id; named at render time (the live node list may arrive after the answer).
  const lines = [...history.values].map(([id, values]) => ({ label: nodes.byId.get(id)?.node.name ?? id, values }));
  return (
    <section class="compare" aria-labelledby="compare-title">
      <h1 id="compare-title">Compare nodes</h1>
      <form class="toolbar" onSubmit={submit}>
        <label>Series <input name="series" list="compare-series" defaultValue={series} required size={36} /></label>
        <datalist id="compare-series">{SUGGESTED.map((s) => <option key={s} value={s} />)}</datalist>
        <label>Nodes with label <input name="label" defaultValue={label} placeholder="room=hall (empty: all)" /></label>
        <button type="submit">Compare</button>
      </form>
      <RangePicker range={range} onChange={setRange} />
      {error && <p role="alert" class="error">{error}</p>}
      {lines.length === 0 ? <p class="muted">No node has this series in this range.</p>
        : <div class="charts"><Chart title={series} unit={unitOf(series)} times={history.times} series={lines} range={shown} onZoom={(from, to) => setRange({ kind: 'custom', from, to })} /></div>}
    </section>
  );
}
