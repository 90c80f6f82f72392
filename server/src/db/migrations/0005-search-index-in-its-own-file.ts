import type { Migration } from './migration.js';

export const migration: Migration = {
  version: 5,
  name: 'the full-text index of log messages moves to its own file (db/log-search-index.ts)',
  up: `
    DROP TRIGGER log_records_fts_delete;
    DROP TRIGGER log_records_fts_insert;
    DROP TABLE log_fts;
  `,
  down: `
    CREATE VIRTUAL TABLE log_fts USING fts5(message, content = 'log_records', content_rowid = 'id');
    CREATE TRIGGER log_records_fts_insert AFTER INSERT ON log_records BEGIN
      INSERT INTO log_fts(rowid, message) VALUES (new.id, new.message);
    END;
    CREATE TRIGGER log_records_fts_delete AFTER DELETE ON log_records BEGIN
      INSERT INTO log_fts(log_fts, rowid, message) VALUES ('delete', old.id, old.message);
    END;
    INSERT INTO log_fts(log_fts) VALUES ('rebuild');
  `,
  postgres: {
    up: `
      -- Nothing: PostgreSQL searches log_records through its own search_vector (made by 0003).
    `,
    down: `
      -- Nothing: see up.
    `,
  },
};
