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

/** A field filter's key: `field.<name>` in the query string (e.g. `field.camera=usb-0`). */
export const FIELD_FILTER_PATTERN = '^field\\.[A-Za-z0-9_.-]{1,64}$';

/** The field filters of a query (`field.camera` -> `camera`). */
export function fieldFilters(query: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(query)) {
    if (key.startsWith('field.') && typeof value === 'string') out[key.slice(6)] = value;
  }
  return out;
}

/** Whether a logged value is the one a filter asks for: strings as they are, numbers, booleans and null by their text. */
export function fieldMatches(value: unknown, wanted: string): boolean {
  if (typeof value === 'string') return value === wanted;
  if (typeof value === 'number') return wanted.trim() !== '' && Number(wanted) === value;
  if (typeof value === 'boolean' || value === null) return String(value) === wanted;
  return false;
}

/** Whether a record has every field a filter names, with that value. */
export const recordMatchesFields = (fields: Record<string, unknown> | null, wanted: Record<string, string>): boolean =>
  Object.entries(wanted).every(([k, v]) => fields !== null && Object.hasOwn(fields, k) && fieldMatches(fields[k], v));
