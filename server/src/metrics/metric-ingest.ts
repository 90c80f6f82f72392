import type { HardwareState } from '@dvic/protocol';
import type { DemoRegistry } from '../live/demo-registry.js';
import { demoRateSeries, hardwareSeries, type SeriesValue } from '@dvic/protocol';
import type { MetricStore } from './metric-store.js';

export const nodeSource = (nodeId: string) => `node:${nodeId}`;
export const deviceSource = (deviceId: string) => `device:${deviceId}`;

/**
 * Turns each hardware state into samples of the node's series, at the time the server received
 * it (the clock the rest of the API uses), plus each demo's lines/s and errors/s since the node's
 * previous sample (from the demo table's counters, which the log ingest keeps).
 */
export class MetricIngest {
  private readonly counters = new Map<string, { at: number; lines: number; errors: number }>();

  constructor(private readonly store: MetricStore, private readonly demos: DemoRegistry) {}

  hardware(nodeId: string, at: number, hw: HardwareState): void {
    this.store.append(nodeSource(nodeId), at, [...hardwareSeries(hw), ...this.demoRates(nodeId, at)]);
  }

  /** A device ping's numeric fields, each its own series (temp_c, rssi...), at the time it came. */
  deviceNumbers(deviceId: string, at: number, numbers: Record<string, number>): void {
    this.store.append(deviceSource(deviceId), at, Object.entries(numbers).filter(([, v]) => Number.isFinite(v)));
  }

  /** A node gone: its series, and the demo counters kept to compute its rates. */
  forgetNode(nodeId: string): Promise<void> {
    for (const key of this.counters.keys()) if (key.startsWith(`${nodeId}\0`)) this.counters.delete(key);
    return this.store.removeSource(nodeSource(nodeId));
  }

  forgetDevice(deviceId: string): Promise<void> {
    return this.store.removeSource(deviceSource(deviceId));
  }

  private demoRates(nodeId: string, at: number): SeriesValue[] {
    const out: SeriesValue[] = [];
    for (const demo of this.demos.list(nodeId)) {
      const key = `${nodeId}\0${demo.demo}`;
      const before = this.counters.get(key);
      this.counters.set(key, { at, lines: demo.line_count, errors: demo.error_count });
      if (before && at > before.at) out.push(...demoRateSeries(demo.demo, demo.line_count - before.lines, demo.error_count - before.errors, (at - before.at) / 1000));
    }
    return out;
  }
}
