import { describe, expect, it } from 'vitest';
import { LogWriteLane, MAX_GROUP_RECORDS } from '../../src/services/log-write-lane.js';

type Batch = { name: string; records: unknown[] };
const batch = (name: string, count: number): Batch => ({ name, records: Array.from({ length: count }) });

/** A lane whose writes are recorded as the names of each group's batches. */
function recordingLane() {
  const groups: string[][] = [];
  const lane = new LogWriteLane<Batch>(async (batches) => { groups.push(batches.map((b) => b.name)); });
  return { lane, groups };
}

describe('a log write lane', () => {
  it('writes what came in one turn as one group, in the order it came', async () => {
    const { lane, groups } = recordingLane();
    for (const name of ['a', 'b', 'c']) lane.push(batch(name, 10));
    await lane.flush();
    expect(groups).toEqual([['a', 'b', 'c']]);
  });

  it(`keeps each transaction within ${MAX_GROUP_RECORDS} records, a bigger batch alone, none lost or reordered`, async () => {
    const { lane, groups } = recordingLane();
    const sizes = { a: 3000, b: 2000, c: 1, d: 8000, e: 1000, f: 1000 };
    for (const [name, size] of Object.entries(sizes)) lane.push(batch(name, size));
    await lane.flush();
    expect(groups).toEqual([['a', 'b'], ['c'], ['d'], ['e', 'f']]);
  });

  it('takes batches that come while it writes into its next transaction', async () => {
    const groups: string[][] = [];
    let release = () => {};
    const lane = new LogWriteLane<Batch>(async (batches) => {
      groups.push(batches.map((b) => b.name));
      if (groups.length === 1) await new Promise<void>((resolve) => { release = resolve; });
    });
    lane.push(batch('a', 1));
    const first = lane.flush();
    lane.push(batch('b', 1));
    lane.push(batch('c', 1));
    release();
    await first;
    await lane.flush();
    expect(groups).toEqual([['a'], ['b', 'c']]);
  });
});
