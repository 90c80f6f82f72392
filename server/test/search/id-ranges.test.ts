import { describe, expect, it } from 'vitest';
import { coarsenRanges, mergeRanges, paddedCount } from '../../src/search/id-ranges.js';

describe('id ranges of a PostgreSQL search', () => {
  it('merges overlapping and adjacent ranges, in id order', () => {
    expect(mergeRanges([[20, 30], [1, 5], [6, 8], [25, 40], [50, 50]])).toEqual([[1, 8], [20, 40], [50, 50]]);
    expect(mergeRanges([])).toEqual([]);
  });

  it('closes the smallest gaps first down to the bound, covering every range given', () => {
    const merged = mergeRanges([[1, 10], [12, 20], [100, 110], [115, 120], [1000, 1001]]);
    expect(coarsenRanges(merged, 3)).toEqual([[1, 20], [100, 120], [1000, 1001]]);
    expect(coarsenRanges(merged, 1)).toEqual([[1, 1001]]);
    expect(coarsenRanges(merged, 10)).toEqual(merged);
  });

  it('names a power of two of ranges, so few statement texts exist', () => {
    expect([1, 2, 3, 5, 64].map(paddedCount)).toEqual([1, 2, 4, 8, 64]);
  });
});
