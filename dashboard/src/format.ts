/**
 * Formatting only the dashboard needs (unit-tested). Units shared with the CLI (bytes, duration,
 * percent, celsius) come from @dvic/protocol/shared.
 */

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
