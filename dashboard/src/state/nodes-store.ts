// Types only from @dvic/protocol/shared (erased at build time) and its pure helpers: no validator.
import { hottest, type LiveMessage, type NodeView, type ServerStatus } from '@dvic/protocol/shared';

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
  /** Bumped on every change of a node, so views can memoise on it. */
  version: number;
  /** The server's own state (storage), from the snapshot and server.status. */
  server: ServerStatus | null;
}

export const emptyState = (): NodesState => ({ byId: new Map(), version: 0, server: null });

const push = (series: number[], value: number | null) =>
  value === null ? series : [...(series.length >= HISTORY_POINTS ? series.slice(1) : series), value];

type Edit = (byId: Map<string, NodeEntry>, old: NodesState) => void;

/** What one message does to the map of nodes (null: nothing, e.g. a message for one view). */
function nodeEdit(m: LiveMessage): Edit | null {
  switch (m.type) {
    case 'snapshot': return (byId, old) => {
      byId.clear();
      for (const node of m.data.nodes) {
        const before = old.byId.get(node.id);
        byId.set(node.id, { node, cpu: before?.cpu ?? seed(node, 'cpu'), temp: before?.temp ?? seed(node, 'temp') });
      }
    };
    case 'node.updated': return (byId) => {
      const before = byId.get(m.data.node.id);
      byId.set(m.data.node.id, { node: { ...before?.node, ...m.data.node }, cpu: before?.cpu ?? [], temp: before?.temp ?? [] });
    };
    case 'node.removed': return (byId) => void byId.delete(m.data.node_id);
    case 'node.status': return (byId) => change(byId, m.data.node_id, (e) => ({ ...e, node: { ...e.node, status: m.data.status, status_since: m.data.since } }));
    case 'node.hardware': return (byId) => change(byId, m.data.node_id, (e) => ({
      node: { ...e.node, hardware: m.data.hardware, hardware_at: m.data.at, last_seen: m.data.at },
      cpu: push(e.cpu, m.data.hardware.cpu.total_pct), temp: push(e.temp, hottest(m.data.hardware)),
    }));
    // node.demos tells only the runs that changed: the node page lays them over the list it fetched (node-demos.ts).
    default: return null;
  }
}

function change(byId: Map<string, NodeEntry>, id: string, edit: (e: NodeEntry) => NodeEntry): void {
  const entry = byId.get(id);
  if (entry) byId.set(id, edit(entry));
}

/**
 * Applies a batch of live messages. Entries that change are replaced (new objects), the others
 * kept as they are, so memoised rows re-render only when their node changed.
 */
export function applyLive(state: NodesState, messages: LiveMessage[]): NodesState {
  let byId = state.byId;
  let server = state.server;
  for (const m of messages) {
    if (m.type === 'snapshot') server = m.data.server;
    if (m.type === 'server.status') server = m.data;
    const edit = nodeEdit(m);
    if (!edit || !touches(byId, m)) continue;
    if (byId === state.byId) byId = new Map(byId);
    edit(byId, state);
  }
  if (byId === state.byId && server === state.server) return state;
  return { byId, version: byId === state.byId ? state.version : state.version + 1, server };
}

/** Whether a message is about a node this state knows (or about them all). */
function touches(byId: Map<string, NodeEntry>, m: LiveMessage): boolean {
  if (m.type === 'snapshot' || m.type === 'node.updated') return true;
  return 'node_id' in m.data && byId.has(m.data.node_id);
}

function seed(node: NodeView, kind: 'cpu' | 'temp'): number[] {
  const hw = node.status === 'online' ? node.hardware : null;
  const value = kind === 'cpu' ? hw?.cpu.total_pct ?? null : hottest(hw);
  return value === null ? [] : [value];
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
