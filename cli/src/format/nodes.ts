import { celsius, diskPercent, duration, hottest, memoryPercent, percent, untrustedReason, type DemoView, type NodeView } from '@dvic/protocol/shared';
import type { Cell } from './table.js';

const STATUS_COLOR = { online: 'green', offline: 'red', revoked: 'gray' } as const;

/** No value, in a terminal table. */
export const NONE = '-';

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
    { text: percent(hw?.cpu.total_pct, NONE), align: 'right' },
    { text: percent(memoryPercent(hw), NONE), align: 'right' },
    { text: percent(diskPercent(hw), NONE), align: 'right' },
    { text: celsius(hottest(hw), NONE), align: 'right' },
    { text: hw ? duration(hw.uptime_s * 1000) : NONE, align: 'right' },
    { text: demos.total ? `${demos.alive}/${demos.total}` : NONE, align: 'right' },
    { text: node.agent_version ?? NONE },
    { text: Object.entries(node.labels).map(([k, v]) => `${k}=${v}`).join(',') },
  ];
}

/** Alive or dead since when, and a warning for a demo whose log file another user may write. */
export function demoStateCell(demo: DemoView, now: number): Cell {
  return { text: `${demo.alive ? 'alive' : 'dead'} ${duration(now - demo.since)}`, color: demo.alive ? 'green' : 'red' };
}

export function trustCell(demo: DemoView): Cell {
  const reason = untrustedReason(demo);
  return reason ? { text: `⚠ untrusted: ${reason}`, color: 'yellow' } : { text: '' };
}

export const lastLineText = (demo: DemoView, now: number): string => (demo.last_line_at ? `${duration(now - demo.last_line_at)} ago` : NONE);
