/** Human units, shared by the dashboard and the CLI (pure functions). */

/** "42s", "5m", "3h 12m", "2d 4h". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/** "512 B", "1.5 KiB", "20 MiB". */
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

/** "42%", or a dash when there is no value. */
export const percent = (value: number | null | undefined, none = '–'): string =>
  value === null || value === undefined || Number.isNaN(value) ? none : `${Math.round(value)}%`;

/** "47°C", or a dash when there is no value. */
export const celsius = (value: number | null | undefined, none = '–'): string =>
  value === null || value === undefined ? none : `${value.toFixed(0)}°C`;
