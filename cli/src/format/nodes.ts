import type { Cell } from './table.js';
import { celsius, duration, percent } from './units.js';

/** The parts of a node the CLI shows (GET /api/v1/nodes). */
export interface NodeView {
  id: string;
  name: string;
  labels: Record<string, string>;
  status: 'online' | 'offline' | 'revoked';
  status_since: number;
  last_seen: number | null;
  agent_version: string | null;
  host: { hostname: string; os: string; kernel: string; arch: string; cpu_model?: string; cpu_count?: number; boot_id: string } | null;
  hardware: any | null;
  hardware_at: number | null;
  demo_summary?: { total: number; alive: number };
}

export function memoryPercent(hw: any): number | null {
  return hw?.memory?.total_bytes ? (100 * hw.memory.used_bytes) / hw.memory.total_bytes : null;
}

/** The root filesystem, or the fullest one. */
export function diskPercent(hw: any): number | null {
  const fss: any[] = hw?.filesystems ?? [];
  const root = fss.find((f) => f.mount === '/') ?? [...fss].sort((a, b) => b.used_bytes / b.size_bytes - a.used_bytes / a.size_bytes)[0];
  return root?.size_bytes ? (100 * root.used_bytes) / root.size_bytes : null;
}

export function hottest(hw: any): number | null {
  const temps: any[] = hw?.temperatures ?? [];
  return temps.length ? Math.max(...temps.map((t) => t.celsius)) : null;
}

const STATUS_COLOR = { online: 'green', offline: 'red', revoked: 'gray' } as const;

export function statusCell(node: NodeView, now: number): Cell {
  return { text: `${node.status} ${duration(now - node.status_since)}`, color: STATUS_COLOR[node.status] };
}

export const NODE_COLUMNS = ['NAME', 'STATUS', 'CPU', 'MEM', 'DISK', 'TEMP', 'UPTIME', 'DEMOS', 'AGENT', 'LABELS'];

export function nodeRow(node: NodeView, now: number): Cell[] {
  const hw = node.status === 'online' ? node.hardware : null;
  const demos = node.demo_summary;
  return [
    { text: node.name },
    statusCell(node, now),
    { text: percent(hw?.cpu?.total_pct), align: 'right' },
    { text: percent(memoryPercent(hw)), align: 'right' },
    { text: percent(diskPercent(hw)), align: 'right' },
    { text: celsius(hottest(hw)), align: 'right' },
    { text: hw ? duration(hw.uptime_s * 1000) : '-', align: 'right' },
    { text: demos && demos.total ? `${demos.alive}/${demos.total}` : '-', align: 'right' },
    { text: node.agent_version ?? '-' },
    { text: Object.entries(node.labels).map(([k, v]) => `${k}=${v}`).join(',') },
  ];
}
