import { describe, expect, it } from 'vitest';
import { alignSeries, appendSample, formatValue, seriesMatching, toCsv } from '../src/state/metric-history.js';

describe('metric history on the node page', () => {
  it('puts series with different times on one axis, null where a series has no point', () => {
    const h = alignSeries([
      { name: 'cpu.total_pct', points: [[1000, 1], [2000, 2]] },
      { name: 'temperatures.t0.celsius', points: [[2000, 40], [3000, 41]] },
    ]);
    expect(h.times).toEqual([1, 2, 3]);
    expect(h.values.get('cpu.total_pct')).toEqual([1, 2, null]);
    expect(h.values.get('temperatures.t0.celsius')).toEqual([null, 40, 41]);
  });

  it('extends the right edge with a live sample, drops what left the range, and ignores a repeated sample', () => {
    let h = alignSeries([{ name: 'cpu.total_pct', points: [[1000, 1], [2000, 2]] }]);
    h = appendSample(h, 3000, [['cpu.total_pct', 3], ['load.load1', 0.5]], 1500);
    expect(h.times).toEqual([2, 3]);
    expect(h.values.get('cpu.total_pct')).toEqual([2, 3]);
    expect(h.values.get('load.load1')).toEqual([null, 0.5]);
    expect(appendSample(h, 3000, [['cpu.total_pct', 9]], 0)).toBe(h);
  });

  it('picks series by pattern in natural order (core 2 before core 10)', () => {
    const h = alignSeries(['cpu.per_core_pct.10', 'cpu.per_core_pct.2', 'cpu.total_pct', 'network.eth0.rx_bytes_per_s'].map((name) => ({ name, points: [] })));
    expect(seriesMatching(h, 'cpu.per_core_pct.*')).toEqual(['cpu.per_core_pct.2', 'cpu.per_core_pct.10']);
    expect(seriesMatching(h, 'network.*.rx_bytes_per_s')).toEqual(['network.eth0.rx_bytes_per_s']);
  });

  it('shows values with their units', () => {
    expect(formatValue(2_147_483_648, 'B')).toBe('2.0 GiB');
    expect(formatValue(1536, 'B/s')).toBe('1.5 KiB/s');
    expect(formatValue(47.25, '°C')).toBe('47.3°C');
    expect(formatValue(3.14159, '/s')).toBe('3.14 /s');
    expect(formatValue(null, '%')).toBe('–');
  });

  it('exports what a chart shows as CSV, quoting labels that need it', () => {
    const csv = toCsv([0, 60], [{ label: 'cpu', values: [1.5, null] }, { label: 'a,"b"', values: [2, 3] }]);
    expect(csv).toBe('time,cpu,"a,""b"""\n1970-01-01T00:00:00.000Z,1.5,2\n1970-01-01T00:01:00.000Z,,3\n');
  });
});
