import { matchesText, parseTextQuery } from '../search/text-query.js';

/** Rows read per round while looking for matches. */
const PAGE_ROWS = 500;

/**
 * Rows read at most for one search: a `q` that matches nothing must not read a whole table into
 * Node. Matches older than the newest this many rows are not found (docs/api.md says so).
 */
export const MAX_SCANNED_ROWS = 20_000;

/**
 * The first `wanted` rows whose text matches q (search/text-query.ts), reading a newest-first
 * query page by page from where the last page ended. For PostgreSQL, which cannot call the
 * server's matcher from SQL as SQLite does (dvic_match): the answers are the same.
 */
export async function firstMatching<Row>(
  q: string, wanted: number, text: (row: Row) => string, page: (after: Row | undefined, rows: number) => Promise<Row[]>,
  maxScanned = MAX_SCANNED_ROWS,
): Promise<Row[]> {
  const query = parseTextQuery(q);
  const found: Row[] = [];
  let after: Row | undefined;
  for (let scanned = 0; scanned < maxScanned;) {
    const asked = Math.min(PAGE_ROWS, maxScanned - scanned);
    const rows = await page(after, asked);
    scanned += rows.length;
    for (const row of rows) {
      if (query !== null && !matchesText(query, text(row))) continue;
      found.push(row);
      if (found.length === wanted) return found;
    }
    if (rows.length < asked) return found;
    after = rows.at(-1);
  }
  return found;
}
