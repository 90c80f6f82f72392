import type { LogRecordView } from '../generated/types.js';

/** How many lines a marker record stands for (lost before the agent read them); null for a real line. */
export function lostLines(record: Pick<LogRecordView, 'fields'>): number | null {
  const count = record.fields?.lost_lines;
  return typeof count === 'number' && count > 0 ? count : null;
}

/** A record's text as the dashboard and the CLI show it: "⚠ 1,234 lines lost: ..." for a marker. */
export function logText(record: Pick<LogRecordView, 'fields' | 'message'>): string {
  const lost = lostLines(record);
  return lost === null ? record.message : `⚠ ${lost.toLocaleString('en-US')} line${lost === 1 ? '' : 's'} lost: ${record.message}`;
}
