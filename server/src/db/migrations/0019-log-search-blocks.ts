import type { Migration } from './migration.js';

const nothing = `
    -- Nothing: SQLite's search index is FTS5 in a file of its own (0005).
  `;

/**
 * PostgreSQL's log search index, by block instead of by row: one row of log_search_blocks per
 * stored batch holds the distinct words of all its lines and the id range they took. A GIN entry
 * per line and word was the costliest part of storing a log line (bench/log-pipeline --store
 * postgres: about half the database's CPU per line); lines of one batch share most of their
 * words, so a block has about one entry per line. The index narrows a search to the blocks with
 * every word and the exact test on search_words (unchanged) decides, as before.
 *
 * Existing rows get blocks of consecutive ids, up to 256 KiB of words each (a row with more than
 * 64 KiB of words a block of its own), so no block's vector nears tsvector's 1 MiB bound. The
 * columns whose collation changes lose their statistics: both tables are analyzed at the end.
 * Dropping the column and its GIN index frees their room at the next VACUUM.
 *
 * The indexed text columns of log_records compare bytewise (COLLATE "C") from here: every stored
 * line adds to three indexes on them, and a locale's comparison cost about a tenth of the
 * database's CPU per line. They hold ids, stream names and demo names, which are only ever
 * matched, never sorted for people. The table is not rewritten; those three indexes are rebuilt.
 */
export const migration: Migration = {
  version: 19,
  name: 'log search index by block: the distinct words of a stored batch and its id range',
  up: nothing,
  down: nothing,
  postgres: {
    up: `
      CREATE TABLE log_search_blocks (
        first_id BIGINT NOT NULL,
        last_id  BIGINT NOT NULL,
        words    tsvector NOT NULL
      );
      CREATE INDEX log_search_blocks_words ON log_search_blocks USING GIN (words);
      CREATE INDEX log_search_blocks_last_id ON log_search_blocks (last_id);
      INSERT INTO log_search_blocks (first_id, last_id, words)
        SELECT min(id), max(id), array_to_tsvector(array_agg(DISTINCT word))
        FROM (
          SELECT id, unnest(string_to_array(search_words, ' ')) AS word, block
          FROM (
            SELECT id, search_words,
              CASE WHEN octet_length(search_words) > 65536 THEN -id
                   ELSE sum(octet_length(search_words) + 1) OVER (ORDER BY id) / 262144 END AS block
            FROM log_records WHERE search_words <> ''
          ) sized
        ) words
        GROUP BY block;
      DROP INDEX log_records_search;
      ALTER TABLE log_records DROP COLUMN search_vector;
      ALTER TABLE log_records
        ALTER COLUMN node_id TYPE TEXT COLLATE "C",
        ALTER COLUMN stream TYPE TEXT COLLATE "C",
        ALTER COLUMN demo TYPE TEXT COLLATE "C";
      ANALYZE log_records;
      ANALYZE log_search_blocks;
    `,
    down: `
      ALTER TABLE log_records
        ALTER COLUMN node_id TYPE TEXT COLLATE "default",
        ALTER COLUMN stream TYPE TEXT COLLATE "default",
        ALTER COLUMN demo TYPE TEXT COLLATE "default";
      ALTER TABLE log_records ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (array_to_tsvector(string_to_array(search_words, ' '))) STORED;
      CREATE INDEX log_records_search ON log_records USING GIN (search_vector);
      DROP TABLE log_search_blocks;
    `,
  },
};
