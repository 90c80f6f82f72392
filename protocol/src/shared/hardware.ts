import type { HardwareState } from '../generated/types.js';

/** Memory in use, percent of total. */
export const memoryPercent = (hw: HardwareState | null): number | null =>
  hw && hw.memory.total_bytes ? (100 * hw.memory.used_bytes) / hw.memory.total_bytes : null;

/** The root filesystem's fill, or the fullest one's when there is no root. */
export function diskPercent(hw: HardwareState | null): number | null {
  if (!hw || !hw.filesystems.length) return null;
  const fill = (f: HardwareState['filesystems'][number]) => (f.size_bytes ? f.used_bytes / f.size_bytes : 0);
  const root = hw.filesystems.find((f) => f.mount === '/') ?? [...hw.filesystems].sort((a, b) => fill(b) - fill(a))[0]!;
  return 100 * fill(root);
}

/** The hottest temperature sensor, in °C. */
export const hottest = (hw: HardwareState | null): number | null =>
  hw && hw.temperatures.length ? Math.max(...hw.temperatures.map((t) => t.celsius)) : null;

/**
 * When a machine's value is a warning or a problem: one set, for the overview, the wall and alerts
 * (percent, °C).
 */
export const HARDWARE_THRESHOLDS = {
  cpu: { warn: 70, bad: 90 },
  memory: { warn: 80, bad: 95 },
  disk: { warn: 85, bad: 95 },
  temp: { warn: 70, bad: 85 },
} as const;
