/**
 * A PostgreSQL search narrows to the id ranges of the search blocks holding its words (search-
 * blocks.ts). Given to the planner as literal ranges (`r.id BETWEEN ? AND ? OR ...`), they are
 * costed from the id histogram: a rare word is read through the primary key, a common one by
 * scanning newest first. A join with the blocks table could not be costed (its range condition
 * looks like a third of the table to the planner), so even a word found in no line was searched
 * for by reading every record.
 */

export type IdRange = [first: number, last: number];

/** Ranges sorted by first id, the overlapping and adjacent ones made one. */
export function mergeRanges(ranges: readonly IdRange[]): IdRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const merged: IdRange[] = [];
  for (const [first, last] of sorted) {
    const previous = merged.at(-1);
    if (previous && first <= previous[1] + 1) previous[1] = Math.max(previous[1], last);
    else merged.push([first, last]);
  }
  return merged;
}

/**
 * At most `max` ranges covering all of `merged` (sorted, disjoint): the smallest gaps are closed
 * first, so what is added holds as few other records as can be. A superset: the exact test decides.
 */
export function coarsenRanges(merged: readonly IdRange[], max: number): IdRange[] {
  if (merged.length <= max) return merged.map(([f, l]) => [f, l]);
  const gaps = merged.slice(1).map((range, i) => ({ after: i, size: range[0] - merged[i]![1] }));
  const closed = new Set(gaps.sort((a, b) => a.size - b.size || a.after - b.after).slice(0, merged.length - max).map((g) => g.after));
  const result: IdRange[] = [];
  merged.forEach(([first, last], i) => {
    if (i > 0 && closed.has(i - 1)) result.at(-1)![1] = last;
    else result.push([first, last]);
  });
  return result;
}

/**
 * How many ranges a statement names: the next power of two (the last range repeated), so a
 * handful of statement texts serve every search.
 */
export function paddedCount(count: number): number {
  let padded = 1;
  while (padded < count) padded *= 2;
  return padded;
}

/** A range no record is in (ids start at 1): a search whose words are in no block finds nothing. */
const NO_RANGE: IdRange = [0, -1];

/** The ranges as a statement names them: paddedCount of them, the last one repeated (none: NO_RANGE). */
export function paddedRanges(ranges: readonly IdRange[]): IdRange[] {
  const last = ranges.at(-1) ?? NO_RANGE;
  return Array.from({ length: paddedCount(Math.max(ranges.length, 1)) }, (_, i) => ranges[i] ?? last);
}
