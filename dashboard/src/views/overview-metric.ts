import { hottest, memoryPercent } from '@dvic/protocol/shared';
import type { NodeEntry, SortKey } from '../state/nodes-store.js';

const STATUS_ORDER = { offline: 0, revoked: 1, online: 2 } as const;

/** The value a node is sorted by (bigger first; names alphabetically). */
export function metric({ node }: NodeEntry, key: SortKey): number | string {
  const hw = node.status === 'online' ? node.hardware : null;
  if (key === 'name') return node.name;
  if (key === 'status') return -STATUS_ORDER[node.status];
  if (key === 'cpu') return hw?.cpu.total_pct ?? -1;
  if (key === 'memory') return memoryPercent(hw) ?? -1;
  return hottest(hw) ?? -1;
}

