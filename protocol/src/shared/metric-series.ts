import type { HardwareState } from '../generated/types.js';

/** One value of a series at one time. */
export type SeriesValue = [name: string, value: number];

/**
 * The series kept from a hardware state, each named by its path in the state (API contract):
 * `cpu.total_pct`, `cpu.per_core_pct.<i>`, `load.load1`, `memory.used_bytes`,
 * `filesystems.<mount>.used_bytes` / `.avail_bytes` / `.used_pct`, `temperatures.<sensor>.celsius`,
 * `network.<iface>.rx_bytes_per_s` / `.tx_bytes_per_s`, `processes`.
 */
export function hardwareSeries(hw: HardwareState): SeriesValue[] {
  const out: SeriesValue[] = [['cpu.total_pct', hw.cpu.total_pct]];
  hw.cpu.per_core_pct.forEach((v, i) => out.push([`cpu.per_core_pct.${i}`, v]));
  out.push(['load.load1', hw.load.load1], ['load.load5', hw.load.load5], ['load.load15', hw.load.load15]);
  const m = hw.memory;
  out.push(
    ['memory.total_bytes', m.total_bytes], ['memory.used_bytes', m.used_bytes], ['memory.available_bytes', m.available_bytes],
    ['memory.swap_total_bytes', m.swap_total_bytes], ['memory.swap_used_bytes', m.swap_used_bytes],
  );
  for (const fs of hw.filesystems) {
    out.push(
      [`filesystems.${fs.mount}.used_bytes`, fs.used_bytes], [`filesystems.${fs.mount}.avail_bytes`, fs.avail_bytes],
      [`filesystems.${fs.mount}.used_pct`, fs.size_bytes > 0 ? Math.round((10_000 * fs.used_bytes) / fs.size_bytes) / 100 : 0],
    );
  }
  for (const t of hw.temperatures) out.push([`temperatures.${t.sensor}.celsius`, t.celsius]);
  for (const n of hw.network) out.push([`network.${n.iface}.rx_bytes_per_s`, n.rx_bytes_per_s], [`network.${n.iface}.tx_bytes_per_s`, n.tx_bytes_per_s]);
  out.push(['processes', hw.processes]);
  return out.filter(([, v]) => Number.isFinite(v));
}

/** Per-demo rates from the demo's line and error counters between two samples. */
export function demoRateSeries(demo: string, lines: number, errors: number, seconds: number): SeriesValue[] {
  const rate = (n: number) => Math.round((100 * Math.max(0, n)) / seconds) / 100;
  return [[`demos.${demo}.lines_per_s`, rate(lines)], [`demos.${demo}.errors_per_s`, rate(errors)]];
}
