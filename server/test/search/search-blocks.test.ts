import { describe, expect, it } from 'vitest';
import { MAX_BLOCK_WORD_BYTES, searchBlocks as blocksOf } from '../../src/search/search-blocks.js';

/** Rows as the words of each, space-separated ('' for none). */
const searchBlocks = (rows: string[], max?: number) => blocksOf(rows.map((r) => (r === '' ? [] : r.split(' '))), max);

describe('search blocks (PostgreSQL search index)', () => {
  it('keeps a usual batch in one block with its distinct words once each', () => {
    expect(searchBlocks(['camera started', 'camera frame 1', '', 'frame 2'])).toEqual([
      { from: 0, to: 4, words: 'camera started frame 1 2' },
    ]);
  });

  it('cuts a batch of many distinct words between rows, each block within the bound, no row cut', () => {
    const rows = Array.from({ length: 100 }, (_, i) => Array.from({ length: 50 }, (_, w) => `r${i}w${w}`).join(' '));
    const blocks = searchBlocks(rows, 20_000);
    expect(blocks.length).toBeGreaterThan(1);
    expect(blocks[0]!.from).toBe(0);
    expect(blocks.at(-1)!.to).toBe(100);
    blocks.forEach((block, i) => {
      if (i > 0) expect(block.from).toBe(blocks[i - 1]!.to);
      const words = block.words.split(' ');
      expect(new Set(words).size).toBe(words.length);
      expect(words.reduce((sum, w) => sum + Buffer.byteLength(w) + 4, 0)).toBeLessThanOrEqual(20_000);
      expect(words.sort()).toEqual(rows.slice(block.from, block.to).flatMap((r) => r.split(' ')).sort());
    });
  });

  it('gives a row bigger than the bound a block of its own', () => {
    const big = Array.from({ length: 2000 }, (_, w) => `big${w}`).join(' ');
    expect(searchBlocks(['a b', big, 'c'], 1000).map((b) => [b.from, b.to])).toEqual([[0, 1], [1, 2], [2, 3]]);
  });

  it('bounds a block well under the 1 MiB PostgreSQL allows a search vector, counting non-ASCII words high', () => {
    expect(MAX_BLOCK_WORD_BYTES).toBeLessThan(1024 * 1024 / 2);
    const rows = Array.from({ length: 200 }, (_, i) => Array.from({ length: 100 }, (_, w) => `ドメイン${i}語${w}`).join(' '));
    for (const block of searchBlocks(rows)) expect(Buffer.byteLength(block.words) + 4 * block.words.split(' ').length).toBeLessThan(MAX_BLOCK_WORD_BYTES);
  });
});
