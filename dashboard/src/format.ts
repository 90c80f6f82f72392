/** Pure formatting for the dashboard (unit-tested). */

export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export const percent = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${Math.round(v)}%`);
export const celsius = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${v.toFixed(0)}°C`);

export function clockTime(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour12: false }) + `.${String(ms % 1000).padStart(3, '0')}`;
}

export function dateTime(ms: number): string {
  const d = new Date(ms);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString([], { hour12: false })}`;
}

/** Severity of a value for colouring (never the only cue: the value is always shown). */
export function level(value: number | null | undefined, warn: number, bad: number): 'ok' | 'warn' | 'bad' | 'none' {
  if (value === null || value === undefined) return 'none';
  return value >= bad ? 'bad' : value >= warn ? 'warn' : 'ok';
}
