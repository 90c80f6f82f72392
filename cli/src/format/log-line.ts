import { logText, lostLines, type LogRecordView } from '@dvic/protocol/shared';
import { paint, type Color } from './color.js';
import { timestamp } from './timestamp.js';

const LEVEL_COLOR: Record<LogRecordView['level'], Color> = { TRACE: 'gray', DEBUG: 'gray', INFO: 'blue', WARN: 'yellow', ERROR: 'red', FATAL: 'magenta' };

/** "2026-11-24 10:00:00.123 pi-3/kiosk WARN  message"; a marker of lost lines reads "⚠ 1,234 lines lost: ...". */
export function logLine(r: LogRecordView, names: Map<string, string>, color: boolean): string {
  const where = `${names.get(r.node_id) ?? r.node_id.slice(0, 8)}/${r.demo ?? 'system'}`;
  const text = lostLines(r) === null ? r.message : paint(logText(r), 'yellow', color);
  return `${paint(timestamp(r.ts), 'gray', color)} ${where} ${paint(r.level.padEnd(5), LEVEL_COLOR[r.level], color)} ${text}`;
}

/** The record as --json prints it: as the API serves it, with its node's name. */
export const logJson = (r: LogRecordView, names: Map<string, string>): string => JSON.stringify({ ...r, node: names.get(r.node_id) });
