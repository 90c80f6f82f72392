import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { plural, type LabDemo } from '@dvic/protocol/shared';
import { api, call } from '../api/client.js';
import { DemoStateBadge, expectationText } from '../components/demo-state.js';
import { ErrorNotice } from '../components/error-notice.js';
import { Sparkline } from '../components/sparkline.js';
import { VirtualList } from '../components/virtual-list.js';
import { navigate, onLink } from '../router.js';
import { healthCounts, visibleDemos, type DemoFilter, type HealthFilter } from '../state/demos-store.js';
import { ErrorRateHistory } from '../state/error-rate.js';
import { useLabDemos, useThrottled } from '../state/use-demos.js';
import { useNodes } from '../state/use-live.js';
import { useNow } from './overview.js';

const ROW_HEIGHT = 44;
const HEALTHS: [HealthFilter, string][] = [['all', 'all'], ['problems', 'problems'], ['down', 'down'], ['crash-loop', 'crash loop'], ['crashed', 'crashed'],
  ['restarting', 'restarting'], ['running', 'running'], ['stopped', 'stopped']];

/** Every demo across every node, problems first, live. */
export function Demos() {
  const nodes = useNodes();
  const demos = useLabDemos();
  const now = useNow();
  const [filter, setFilter] = useState<DemoFilter>(() => ({ health: 'all', label: new URLSearchParams(location.search).get('label') ?? '', text: '' }));
  const [error, setError] = useState<unknown>(null);
  const nodeOf = (id: string) => nodes.byId.get(id)?.node;
  const version = useThrottled(`${demos.version}:${nodes.version}`, 250);
  const list = useMemo(() => visibleDemos(demos, filter, nodeOf), [version, filter]);
  const counts = useMemo(() => healthCounts(demos.byId.values()), [version]);
  const errorRates = useRef(new ErrorRateHistory()).current;
  useMemo(() => errorRates.record(demos.byId.values(), Date.now()), [version]);
  useEffect(() => {
    if (demos.loaded && !performance.getEntriesByName('dvic:demos-first-render').length) requestAnimationFrame(() => performance.mark('dvic:demos-first-render'));
  }, [demos.loaded]);
  const dismiss = (d: LabDemo) => call(api.DELETE('/api/v1/demos/{id}', { params: { path: { id: d.id } }, body: {} })).then(() => setError(null), setError);
  const problems = counts.down + counts['crash-loop'] + counts.crashed;

  return (
    <section class="demos-page" aria-labelledby="demos-title">
      <div class="toolbar">
        <h1 id="demos-title">Demos <span class="muted" data-testid="demo-counts">{plural(counts.running + counts.restarting, 'demo')} running · {plural(problems, 'problem')} · {demos.byId.size} in all</span></h1>
        <label>State <select value={filter.health} onChange={(e) => setFilter({ ...filter, health: (e.currentTarget as HTMLSelectElement).value as HealthFilter })}>
          {HEALTHS.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
        </select></label>
        <label>Label <input placeholder="room=hall" value={filter.label} onInput={(e) => setFilter({ ...filter, label: (e.currentTarget as HTMLInputElement).value })} /></label>
        <label>Search <input type="search" placeholder="demo or node" value={filter.text} onInput={(e) => setFilter({ ...filter, text: (e.currentTarget as HTMLInputElement).value })} /></label>
      </div>
      <ErrorNotice error={error ?? demos.error} fallback="the demos cannot be shown" />
      <div class="table" role="table" aria-label="Demos" aria-rowcount={list.length}>
        <div class="demo-row head" role="row">
          {['Demo', 'Node', 'State', 'Restarts today', 'Errors (per minute, 30 min)', 'Last line', 'Runs', 'Expected', ''].map((h) => <span key={h} role="columnheader">{h}</span>)}
        </div>
        {list.length === 0
          ? <p class="muted empty">{!demos.loaded ? 'Loading…' : demos.byId.size ? 'No demo matches these filters.' : 'No demo has written a log yet.'}</p>
          : <VirtualList items={list} rowHeight={ROW_HEIGHT} label="Demos" render={(d) => (
            <DemoRow key={d.id} demo={d} node={nodeOf(d.node_id)?.name ?? d.node_id.slice(0, 8)} now={now} errorRate={errorRates.rates(d.id, now)} onDismiss={dismiss} />
          )} />}
      </div>
    </section>
  );
}

function DemoRow({ demo: d, node, now, errorRate, onDismiss }: { demo: LabDemo; node: string; now: number; errorRate: number[]; onDismiss: (d: LabDemo) => void }) {
  const href = `/demos/${d.id}`;
  const dismissible = !d.expected && d.state !== 'running' && d.state !== 'restarting';
  return (
    <div class={`demo-row health-${d.down ? 'down' : d.crash_loop ? 'crash-loop' : d.state}`} role="row" data-demo={d.name} data-node={node} data-state={d.state} data-down={String(d.down)}
      onClick={(e) => { if (!(e.target as HTMLElement).closest('a, button')) navigate(href); }}>
      <span role="cell"><a href={href} onClick={(e) => onLink(e, href)}><strong>{d.name}</strong></a></span>
      <span role="cell"><a href={`/nodes/${d.node_id}`} onClick={(e) => onLink(e, `/nodes/${d.node_id}`)}>{node}</a></span>
      <span role="cell"><DemoStateBadge demo={d} now={now} /></span>
      <span role="cell" class="num">{d.restarts_today}</span>
      <span role="cell" class={`num errors ${d.error_count ? 'warn' : ''}`}>{d.error_count} <Sparkline values={errorRate} label={`errors per minute of ${d.name}`} /></span>
      <span role="cell" class="last-line" title={d.last_line ?? ''} data-testid="last-line">{d.last_line ?? '–'}</span>
      <span role="cell" class="num">{d.runs.length}</span>
      <span role="cell">{expectationText(d)}</span>
      <span role="cell">{dismissible && <button type="button" onClick={() => onDismiss(d)} title="Forget this demo (its logs stay)">Dismiss</button>}</span>
    </div>
  );
}
