import { describe, expect, it } from 'vitest';
import { decodeChunk, encodeChunk } from '../../src/metrics/chunk-codec.js';

describe('metric chunk codec', () => {
  it('gives back every timestamp and value exactly, decimals, large integers, negatives and odd doubles alike', () => {
    const ts = [1_700_000_000_000, 1_700_000_005_001, 1_700_000_010_000, 1_700_000_010_001, 1_700_000_900_000];
    const columns = [
      [12.3, 0.29, 99.999, -40.5, 0],
      [8_589_934_592, 8_589_000_000, 2 ** 60, 1 / 3, Number.MAX_SAFE_INTEGER],
    ];
    const data = encodeChunk({ ts, columns });
    expect(decodeChunk(data, ts[0]!)).toEqual({ ts, columns });
  });

  it('stores a steady series in a few bytes a point', () => {
    const ts = Array.from({ length: 240 }, (_, i) => 1_700_000_000_000 + i * 5000);
    const values = ts.map((_, i) => 40 + (i % 7) * 0.5);
    const data = encodeChunk({ ts, columns: [values] });
    expect(data.length / ts.length).toBeLessThan(3.5);
    expect(decodeChunk(data, ts[0]!).columns[0]).toEqual(values);
  });

  it('refuses a chunk cut short instead of inventing points', () => {
    const data = encodeChunk({ ts: [1, 2, 3], columns: [[1.5, 2.5, 1e300]] });
    expect(() => decodeChunk(data.subarray(0, data.length - 3), 1)).toThrow(/cut short/);
  });
});
