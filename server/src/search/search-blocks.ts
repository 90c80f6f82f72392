/**
 * PostgreSQL's log search index holds one block per stored batch: the distinct words of its lines
 * and the id range they took (db/migrations/0019-log-search-blocks.ts). A block's words become one
 * tsvector, which PostgreSQL bounds at 1 MiB, so a batch of many long, distinct lines is cut into
 * several blocks.
 */

/** Bound of a block's distinct words, counted high (3 UTF-8 bytes per UTF-16 unit): its vector stays well under 1 MiB. */
export const MAX_BLOCK_WORD_BYTES = 300 * 1024;
/** A tsvector entry's fixed cost beside its text (WordEntry, alignment). */
const ENTRY_BYTES = 8;

export interface SearchBlock {
  /** The block's rows: [from, to) of the batch. */
  from: number;
  to: number;
  /** Its distinct words, separated by spaces ('' when its lines have none). */
  words: string;
}

/** The distinct words of a block being filled, and what they will cost in its vector. */
class BlockWords {
  private readonly words = new Set<string>();
  bytes = 0;

  constructor(readonly from: number) {}

  add(words: readonly string[]): void {
    for (const w of words) {
      if (this.words.has(w)) continue;
      this.words.add(w);
      this.bytes += cost(w);
    }
  }

  until(to: number): SearchBlock {
    return { from: this.from, to, words: [...this.words].join(' ') };
  }
}

const cost = (word: string) => word.length * 3 + ENTRY_BYTES;

/** What a row's words could add to a block, at most (as if none were there yet). */
const costOfRow = (words: readonly string[]) => words.reduce((sum, w) => sum + cost(w), 0);

/**
 * Cuts rows (each the list of its words, as searchWordList gives them) into consecutive blocks
 * whose distinct words stay within `maxBytes`. A row is never cut: one stored line's words always
 * fit in a block.
 */
export function searchBlocks(rowWords: readonly (readonly string[])[], maxBytes = MAX_BLOCK_WORD_BYTES): SearchBlock[] {
  const blocks: SearchBlock[] = [];
  let block = new BlockWords(0);
  rowWords.forEach((words, row) => {
    if (row > block.from && block.bytes + costOfRow(words) > maxBytes) {
      blocks.push(block.until(row));
      block = new BlockWords(row);
    }
    block.add(words);
  });
  if (rowWords.length > block.from) blocks.push(block.until(rowWords.length));
  return blocks;
}
