import { Component } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { AddMachineDialog } from '../components/add-machine-dialog.js';
import { AgentBehind } from '../components/agent-behind.js';
import { Sparkline } from '../components/sparkline.js';
import { StatusBadge } from '../components/status.js';
import { VirtualList } from '../components/virtual-list.js';
import { celsius, diskPercent, duration, HARDWARE_THRESHOLDS as T, hottest, memoryPercent, percent } from '@dvic/protocol/shared';
import { level } from '../format.js';
import { navigate, onLink } from '../router.js';
import { agentProblemCount, agentProblemLines } from '../state/health.js';
import { useShippedAgent } from '../state/use-agent-release.js';
import { visibleNodes, type Filter, type NodeEntry, type SortKey } from '../state/nodes-store.js';
import { useNodes } from '../state/use-live.js';
import { useDevices } from '../state/use-devices.js';
import { DeviceTable } from './devices.js';
import { metric } from './overview-metric.js';

const ROW_HEIGHT = 48;
/** Ticks every few seconds so "online 3m" stays true without live messages. */
export function useNow(everyMs = 5000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

export function Overview() {
  const state = useNodes();
  const now = useNow();
  const [filter, setFilter] = useState<Filter>({ status: 'all', label: '', text: '' });
  const [sort, setSort] = useState<SortKey>('name');
  const [kind, setKind] = useState<'all' | 'nodes' | 'devices'>('all');
  const devices = useDevices();
  const shipped = useShippedAgent();
  const [adding, setAdding] = useState(false);
  const list = useMemo(() => visibleNodes(state, filter, sort, metric), [state.version, filter, sort]);
  const counts = useMemo(() => {
    let online = 0;
    for (const { node } of state.byId.values()) if (node.status === 'online') online++;
    return { online, total: state.byId.size };
  }, [state.version]);
  useEffect(() => {
    if (state.byId.size && !performance.getEntriesByName('dvic:first-render').length) {
      requestAnimationFrame(() => performance.mark('dvic:first-render'));
    }
  }, [state.version]);

  return (
    <section class="overview" aria-labelledby="overview-title">
      <div class="toolbar">
        <h1 id="overview-title">Nodes <span class="muted" data-testid="node-counts">{counts.online} online of {counts.total}</span></h1>
        <label>Kind <select value={kind} onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value as typeof kind)}>
          <option value="all">all</option><option value="nodes">nodes</option><option value="devices">devices</option>
        </select></label>
        <label>Status <select value={filter.status} onChange={(e) => setFilter({ ...filter, status: (e.currentTarget as HTMLSelectElement).value as Filter['status'] })}>
          <option value="all">all</option><option value="online">online</option><option value="offline">offline</option><option value="revoked">revoked</option>
        </select></label>
        <label>Label <input placeholder="room=hall" value={filter.label} onInput={(e) => setFilter({ ...filter, label: (e.currentTarget as HTMLInputElement).value })} /></label>
        <label>Search <input type="search" placeholder="name, host, label" value={filter.text} onInput={(e) => setFilter({ ...filter, text: (e.currentTarget as HTMLInputElement).value })} /></label>
        <label>Sort <select value={sort} onChange={(e) => setSort((e.currentTarget as HTMLSelectElement).value as SortKey)}>
          <option value="name">name</option><option value="status">down first</option><option value="cpu">CPU</option><option value="memory">memory</option><option value="temp">temperature</option>
        </select></label>
        <button type="button" onClick={() => setAdding(true)}>Add machine</button>
      </div>
      {kind !== 'nodes' && devices.byId.size > 0 && <DeviceTable state={devices} text={filter.text} />}
      {adding && <AddMachineDialog onClose={() => setAdding(false)} />}
      {kind !== 'devices' && <div class="table" role="table" aria-label="Nodes" aria-rowcount={list.length}>
        <div class="row head" role="row">
          {['Name', 'Status', 'CPU', 'Memory', 'Disk', 'Hottest', 'Uptime', 'Demos', 'Agent'].map((h) => <span key={h} role="columnheader">{h}</span>)}
        </div>
        {list.length === 0
          ? <p class="muted empty">{state.byId.size ? 'No node matches these filters.' : 'No nodes yet: enroll one with dvic nodes add <name>.'}</p>
          : <VirtualList items={list} rowHeight={ROW_HEIGHT} label="Node rows" render={(entry, index) => <NodeRow key={entry.node.id} entry={entry} now={now} index={index} shipped={shipped} />} />}
      </div>}
    </section>
  );
}

/** One node; re-renders only when its entry (or the clock) changes. */
type RowProps = { entry: NodeEntry; now: number; index: number; shipped: string | null };
class NodeRow extends Component<RowProps> {
  override shouldComponentUpdate(next: RowProps) {
    return next.entry !== this.props.entry || next.now !== this.props.now || next.index !== this.props.index || next.shipped !== this.props.shipped;
  }

  override render() {
    const { entry, now, shipped } = this.props;
    const { node } = entry;
    const hw = node.status === 'online' ? node.hardware : null;
    const cpu = hw?.cpu.total_pct;
    const mem = memoryPercent(hw);
    const disk = diskPercent(hw);
    const temp = hottest(hw);
    const problems = agentProblemCount(node.agent_status);
    const open = () => navigate(`/nodes/${node.id}`);
    return (
      <div class={`row node-row ${node.status}`} role="row" tabIndex={0} data-node={node.name}
        onKeyDown={(e) => keyboard(e, open)} onClick={open}>
        <span role="cell" class="name">
          <a href={`/nodes/${node.id}`} onClick={(e) => onLink(e, `/nodes/${node.id}`)}>{node.name}</a>
          <span class="labels">{Object.entries(node.labels).map(([k, v]) => <span key={k} class="label">{k}={v}</span>)}</span>
        </span>
        <span role="cell"><StatusBadge status={node.status} since={node.status_since} now={now} /></span>
        <span role="cell" class={`num ${level(cpu, T.cpu.warn, T.cpu.bad)}`} data-testid="cpu">{percent(cpu)}</span>
        <span role="cell" class={`num ${level(mem, T.memory.warn, T.memory.bad)}`}>{percent(mem)}</span>
        <span role="cell" class={`num ${level(disk, T.disk.warn, T.disk.bad)}`}>{percent(disk)}</span>
        <span role="cell" class={`num temp ${level(temp, T.temp.warn, T.temp.bad)}`}>{celsius(temp)} <Sparkline values={entry.temp} label={`${node.name} temperature`} /></span>
        <span role="cell" class="num">{hw ? duration(hw.uptime_s * 1000) : '–'}</span>
        <span role="cell" class="num">{node.demo_summary.total ? `${node.demo_summary.alive}/${node.demo_summary.total}` : '–'}</span>
        <span role="cell" class="muted">{node.agent_version ?? '–'}
          {problems > 0 && <span class="badge warn" data-testid="agent-problems" title={agentProblemLines(node.agent_status).join('\n')}> ⚠ {problems}</span>}
          <AgentBehind nodeId={node.id} version={node.agent_version} shipped={shipped} />
        </span>
      </div>
    );
  }
}

/** Enter opens a row; arrows move between rows. */
function keyboard(event: KeyboardEvent, open: () => void): void {
  const row = event.currentTarget as HTMLElement;
  if (event.key === 'Enter') open();
  else if (event.key === 'ArrowDown') (row.nextElementSibling as HTMLElement | null)?.focus();
  else if (event.key === 'ArrowUp') (row.previousElementSibling as HTMLElement | null)?.focus();
  else return;
  event.preventDefault();
}
