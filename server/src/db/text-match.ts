import { matchesText, parseTextQuery } from '../search/text-query.js';

/** Rows read per round while looking for matches. */
const PAGE_ROWS = 500;

/**
 * The first `wanted` rows whose text matches q (search/text-query.ts), reading a newest-first
 * query page by page from where the last page ended. For PostgreSQL, which cannot call the
 * server's matcher from SQL as SQLite does (dvic_match): the answers are the same.
 */
export async function firstMatching<Row>(
  q: string, wanted: number, text: (row: Row) => string, page: (after: Row | undefined, rows: number) => Promise<Row[]>,
): Promise<Row[]> {
  const query = parseTextQuery(q);
  const found: Row[] = [];
  let after: Row | undefined;
  for (;;) {
    const rows = await page(after, PAGE_ROWS);
    for (const row of rows) {
      if (query !== null && !matchesText(query, text(row))) continue;
      found.push(row);
      if (found.length === wanted) return found;
    }
    if (rows.length < PAGE_ROWS) return found;
    after = rows.at(-1);
  }
}
