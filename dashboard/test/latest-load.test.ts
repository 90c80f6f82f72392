import { describe, expect, it } from 'vitest';
import { LatestLoad } from '../src/state/latest-load.js';

describe('overlapping loads of a live list', () => {
  it('uses only the latest answer, with what was heard since that load began', () => {
    const loads = new LatestLoad<string>();
    const first = loads.begin(); // the page opens
    loads.heard(['a']);
    const second = loads.begin(); // the live stream opens: load again
    loads.heard(['b']);
    expect(loads.finish(first)).toBeNull(); // answered late: dropped, its error too
    expect(loads.isLatest(first)).toBe(false);
    loads.heard(['c']);
    expect(loads.finish(second)).toEqual(['b', 'c']);
  });

  it('keeps nothing between loads', () => {
    const loads = new LatestLoad<string>();
    loads.heard(['before any load']);
    const load = loads.begin();
    expect(loads.finish(load)).toEqual([]);
    loads.heard(['after it answered']);
    expect(loads.finish(loads.begin())).toEqual([]);
  });
});
