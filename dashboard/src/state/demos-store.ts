// Pure state of the lab's demos: the list GET /api/v1/demos answered, kept current by
// demo.updated / demo.removed. Types only from @dvic/protocol/shared (no validator).
import { compareDemoHealth, demoHealth, type DemoHealth, type LabDemo, type LiveMessage } from '@dvic/protocol/shared';

export interface DemosState {
  byId: Map<string, LabDemo>;
  /** Bumped on every change, so views can memoise on it. */
  version: number;
  loaded: boolean;
}

export const emptyDemos = (): DemosState => ({ byId: new Map(), version: 0, loaded: false });

/** The fetched list, then the live messages that came while it was on its way. */
export function withFetched(demos: LabDemo[], since: LiveMessage[], version = 0): DemosState {
  return applyDemoMessages({ byId: new Map(demos.map((d) => [d.id, d])), version: version + 1, loaded: true }, since);
}

/** Applies demo.updated and demo.removed; other messages leave the state as it is (same object). */
export function applyDemoMessages(state: DemosState, messages: LiveMessage[]): DemosState {
  let byId = state.byId;
  const edit = () => (byId === state.byId ? (byId = new Map(byId)) : byId);
  for (const m of messages) {
    if (m.type === 'demo.updated') for (const d of m.data.demos) edit().set(d.id, d);
    else if (m.type === 'demo.removed') for (const id of m.data.ids) edit().delete(id);
  }
  return byId === state.byId ? state : { ...state, byId, version: state.version + 1 };
}

export type HealthFilter = 'all' | 'problems' | DemoHealth;

export interface DemoFilter {
  health: HealthFilter;
  /** `key` or `key=value`, matched on the demo's node labels. */
  label: string;
  /** Part of the demo's or the node's name. */
  text: string;
}

const PROBLEMS: DemoHealth[] = ['down', 'crash-loop', 'crashed'];

/** The demos to show, problems first. Pure. */
export function visibleDemos(state: DemosState, filter: DemoFilter, nodeOf: (id: string) => { name: string; labels: Record<string, string> } | undefined): LabDemo[] {
  const text = filter.text.trim().toLowerCase();
  const [lk, lv] = filter.label.includes('=') ? filter.label.split('=', 2) : [filter.label.trim(), undefined];
  const list: LabDemo[] = [];
  for (const d of state.byId.values()) {
    const health = demoHealth(d);
    if (filter.health === 'problems' ? !PROBLEMS.includes(health) : filter.health !== 'all' && health !== filter.health) continue;
    const node = nodeOf(d.node_id);
    if (lk && !(node && (lv === undefined ? lk in node.labels : node.labels[lk] === lv))) continue;
    if (text && !d.name.toLowerCase().includes(text) && !(node?.name.toLowerCase().includes(text))) continue;
    list.push(d);
  }
  return list.sort((a, b) => compareDemoHealth(a, b) || (nodeOf(a.node_id)?.name ?? '').localeCompare(nodeOf(b.node_id)?.name ?? ''));
}

/** Counts by health, for the summary line. */
export function healthCounts(demos: Iterable<LabDemo>): Record<DemoHealth, number> {
  const counts: Record<DemoHealth, number> = { down: 0, 'crash-loop': 0, crashed: 0, restarting: 0, running: 0, stopped: 0 };
  for (const d of demos) counts[demoHealth(d)]++;
  return counts;
}
