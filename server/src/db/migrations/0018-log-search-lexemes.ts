import type { Migration } from './migration.js';

const nothing = `
    -- Nothing: SQLite's search index is FTS5 in a file of its own (0005).
  `;

/**
 * PostgreSQL's search vector made from the server's own words instead of the text search parser:
 * search_words already holds the message's folded words (search/text-query.ts), so each becomes a
 * lexeme as it is. to_tsvector parsed every line again on insert, the costliest part of storing a
 * log line after the GIN index (bench/log-pipeline --store postgres). Queries are tsquery
 * literals of the same words (tsQueryText), so vector and query agree without either parser.
 */
export const migration: Migration = {
  version: 18,
  name: 'log search vector: the stored words as lexemes, without the text search parser',
  up: nothing,
  down: nothing,
  postgres: {
    up: `
      DROP INDEX log_records_search;
      ALTER TABLE log_records DROP COLUMN search_vector;
      ALTER TABLE log_records ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (array_to_tsvector(string_to_array(search_words, ' '))) STORED;
      CREATE INDEX log_records_search ON log_records USING GIN (search_vector);
    `,
    down: `
      DROP INDEX log_records_search;
      ALTER TABLE log_records DROP COLUMN search_vector;
      ALTER TABLE log_records ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (to_tsvector('simple', search_words)) STORED;
      CREATE INDEX log_records_search ON log_records USING GIN (search_vector);
    `,
  },
};
