import { logText, lostLines, type LogRecordView } from '@dvic/protocol/shared';
import { paint, type Color } from './color.js';
import { timestamp } from './timestamp.js';

const LEVEL_COLOR: Record<LogRecordView['level'], Color> = { TRACE: 'gray', DEBUG: 'gray', INFO: 'blue', WARN: 'yellow', ERROR: 'red', FATAL: 'magenta' };

/** "2026-11-24 10:00:00.123 pi-3/kiosk WARN  message"; a marker of lost lines reads "⚠ 1,234 lines lost: ...". */
export function logLine(r: LogRecordView, names: Map<string, string>, color: boolean): string {
  const where = `${names.get(r.node_id) ?? r.node_id.slice(0, 8)}/${r.demo ?? 'system'}`;
  const text = lostLines(r) === null ? r.message : paint(logText(r), 'yellow', color);
  const fields = fieldsText(r.fields);
  return `${paint(timestamp(r.ts), 'gray', color)} ${where} ${paint(r.level.padEnd(5), LEVEL_COLOR[r.level], color)} ${text}${fields ? ` ${paint(fields, 'cyan', color)}` : ''}`;
}

/** Markers the agent adds are shown otherwise (lost lines) or not at all. */
const HIDDEN_FIELDS = new Set(['lost_lines', 'raw', 'split']);

/** `camera=usb-0 fps=30`: strings as they are (quoted when they hold spaces), other values as JSON. */
export function fieldsText(fields: Record<string, unknown> | null): string {
  return Object.entries(fields ?? {}).filter(([k]) => !HIDDEN_FIELDS.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"=]/.test(v) && v !== '' ? v : JSON.stringify(v)}`).join(' ');
}

/** The record as --json prints it: as the API serves it, with its node's name. */
export const logJson = (r: LogRecordView, names: Map<string, string>): string => JSON.stringify({ ...r, node: names.get(r.node_id) });
