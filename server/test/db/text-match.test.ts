// The PostgreSQL `q` scan of the audit log and commands: it stops after MAX_SCANNED_ROWS rows, so a
// query that matches nothing never reads a whole table into the server.
import { describe, expect, it } from 'vitest';
import { firstMatching, MAX_SCANNED_ROWS } from '../../src/db/text-match.js';

/** A newest-first table of `count` rows (id = count..1) that counts the rows read. */
function table(count: number, text: (id: number) => string) {
  const read = { rows: 0 };
  const page = async (after: { id: number } | undefined, rows: number) => {
    const start = after ? after.id - 1 : count;
    const out = Array.from({ length: Math.max(0, Math.min(rows, start)) }, (_, i) => ({ id: start - i, text: text(start - i) }));
    read.rows += out.length;
    return out;
  };
  return { page, read };
}

describe('firstMatching', () => {
  it('reads at most MAX_SCANNED_ROWS rows for a query that matches nothing', async () => {
    const { page, read } = table(MAX_SCANNED_ROWS * 3, (id) => `entry ${id}`);
    expect(await firstMatching('absent', 51, (r) => r.text, page)).toEqual([]);
    expect(read.rows).toBe(MAX_SCANNED_ROWS);
  });

  it('finds the newest matches within the scanned rows and stops once it has enough', async () => {
    const { page, read } = table(5000, (id) => (id % 1000 === 0 ? `deploy ${id}` : `entry ${id}`));
    expect((await firstMatching('deploy', 2, (r) => r.text, page)).map((r) => r.id)).toEqual([5000, 4000]);
    expect(read.rows).toBe(1500); // three pages of 500: 5000..4001
    const small = table(5000, (id) => (id === 10 ? 'deploy' : 'entry'));
    expect(await firstMatching('deploy', 2, (r) => r.text, small.page, 1000)).toEqual([]);
    expect(small.read.rows).toBe(1000);
  });
});
