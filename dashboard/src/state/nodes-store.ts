import { hottest } from './hardware.js';
import type { DemoView, NodeView } from './types.js';

/** Points kept per node for sparklines: 5 minutes at the default 5-second interval. */
export const HISTORY_POINTS = 60;

export interface NodeEntry {
  node: NodeView;
  /** Recent samples since the page opened, oldest first. */
  cpu: number[];
  temp: number[];
}

export interface NodesState {
  byId: Map<string, NodeEntry>;
  /** Bumped on every change, so views can memoise on it. */
  version: number;
}

export const emptyState = (): NodesState => ({ byId: new Map(), version: 0 });

const push = (series: number[], value: number | null) =>
  value === null ? series : [...(series.length >= HISTORY_POINTS ? series.slice(1) : series), value];

/**
 * Applies a batch of live messages. Entries that change are replaced (new objects), the others
 * kept as they are, so memoised rows re-render only when their node changed.
 */
export function applyLive(state: NodesState, messages: any[]): NodesState {
  let byId = state.byId;
  let changed = false;
  const edit = () => {
    if (byId === state.byId) byId = new Map(byId);
    changed = true;
  };
  for (const m of messages) {
    if (m.type === 'snapshot') {
      const fresh = new Map<string, NodeEntry>();
      for (const node of m.data.nodes as NodeView[]) {
        const old = state.byId.get(node.id);
        fresh.set(node.id, { node, cpu: old?.cpu ?? seed(node, 'cpu'), temp: old?.temp ?? seed(node, 'temp') });
      }
      byId = fresh;
      changed = true;
    } else if (m.type === 'node.updated') {
      edit();
      const old = byId.get(m.data.node.id);
      byId.set(m.data.node.id, { node: { ...old?.node, ...m.data.node }, cpu: old?.cpu ?? [], temp: old?.temp ?? [] });
    } else if (m.type === 'node.status') {
      const old = byId.get(m.data.node_id);
      if (!old) continue;
      edit();
      byId.set(old.node.id, { ...old, node: { ...old.node, status: m.data.status, status_since: m.data.since } });
    } else if (m.type === 'node.hardware') {
      const old = byId.get(m.data.node_id);
      if (!old) continue;
      edit();
      const hw = m.data.hardware;
      byId.set(old.node.id, {
        node: { ...old.node, hardware: hw, hardware_at: m.data.at, last_seen: m.data.at },
        cpu: push(old.cpu, hw.cpu.total_pct), temp: push(old.temp, hottest(hw)),
      });
    } else if (m.type === 'node.demos') {
      const old = byId.get(m.data.node_id);
      if (!old) continue;
      edit();
      // Counts arrive with the node.updated that follows; here only the detailed list changes.
      byId.set(old.node.id, { ...old, node: { ...old.node, demos: mergeDemos(old.node.demos, m.data.demos) } });
    }
  }
  return changed ? { byId, version: state.version + 1 } : state;
}

function seed(node: NodeView, kind: 'cpu' | 'temp'): number[] {
  const hw = node.status === 'online' ? node.hardware : null;
  const value = kind === 'cpu' ? hw?.cpu.total_pct ?? null : hottest(hw);
  return value === null ? [] : [value];
}

function mergeDemos(current: DemoView[] | undefined, changes: DemoView[]): DemoView[] {
  const byToken = new Map((current ?? []).map((d) => [d.token, d]));
  for (const d of changes) byToken.set(d.token, d);
  return [...byToken.values()];
}

export type SortKey = 'name' | 'status' | 'cpu' | 'memory' | 'temp';

export interface Filter {
  status: 'all' | 'online' | 'offline' | 'revoked';
  label: string;
  text: string;
}

/** The nodes to show, filtered and sorted. Pure. */
export function visibleNodes(state: NodesState, filter: Filter, sort: SortKey, metric: (e: NodeEntry, k: SortKey) => number | string): NodeEntry[] {
  const text = filter.text.trim().toLowerCase();
  const [lk, lv] = filter.label.includes('=') ? filter.label.split('=', 2) : [filter.label, undefined];
  const list = [...state.byId.values()].filter(({ node }) =>
    (filter.status === 'all' || node.status === filter.status)
    && (!lk || (lv === undefined ? lk in node.labels : node.labels[lk] === lv))
    && (!text || node.name.toLowerCase().includes(text) || (node.host?.hostname ?? '').toLowerCase().includes(text)
      || Object.entries(node.labels).some(([k, v]) => `${k}=${v}`.toLowerCase().includes(text))));
  return list.sort((a, b) => {
    const x = metric(a, sort);
    const y = metric(b, sort);
    if (x === y) return a.node.name.localeCompare(b.node.name);
    if (typeof x === 'string' && typeof y === 'string') return x.localeCompare(y);
    return (y as number) - (x as number);
  });
}
