import type { Migration } from './migration.js';

export const migration: Migration = {
  version: 3,
  name: 'log records with full-text search, demo processes',
  up: `
    -- (node_id, stream, offset) identifies a line in its source: a resent batch inserts nothing.
    -- stream is demo:<token>:<generation> for demo files, system:<source>[:<id>] for system logs.
    CREATE TABLE log_records (
      id         INTEGER PRIMARY KEY,
      node_id    TEXT NOT NULL,
      source     TEXT NOT NULL CHECK (source IN ('demo', 'system')),
      stream     TEXT NOT NULL,
      offset     INTEGER,
      demo       TEXT,
      token      TEXT,
      ts         INTEGER NOT NULL,
      level      INTEGER NOT NULL,
      message    TEXT NOT NULL,
      fields     TEXT,
      size       INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX log_records_source_position ON log_records(node_id, stream, offset);
    CREATE INDEX log_records_ts ON log_records(ts, id);
    CREATE INDEX log_records_node_ts ON log_records(node_id, ts, id);
    CREATE INDEX log_records_demo_ts ON log_records(demo, ts, id);
    CREATE VIRTUAL TABLE log_fts USING fts5(message, content = 'log_records', content_rowid = 'id');
    CREATE TRIGGER log_records_fts_insert AFTER INSERT ON log_records BEGIN
      INSERT INTO log_fts(rowid, message) VALUES (new.id, new.message);
    END;
    CREATE TRIGGER log_records_fts_delete AFTER DELETE ON log_records BEGIN
      INSERT INTO log_fts(log_fts, rowid, message) VALUES ('delete', old.id, old.message);
    END;
    CREATE TABLE demos (
      node_id      TEXT NOT NULL,
      token        TEXT NOT NULL,
      demo         TEXT NOT NULL,
      pid          INTEGER NOT NULL DEFAULT 0,
      start_time   INTEGER,
      user         TEXT,
      executable   TEXT,
      argv         TEXT,
      container    TEXT,
      alive        INTEGER NOT NULL DEFAULT 1,
      since        INTEGER NOT NULL,
      started_at   INTEGER,
      exited_at    INTEGER,
      last_line_at INTEGER,
      line_count   INTEGER NOT NULL DEFAULT 0,
      error_count  INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (node_id, token)
    );
  `,
  down: `
    DROP TABLE demos;
    DROP TRIGGER log_records_fts_delete;
    DROP TRIGGER log_records_fts_insert;
    DROP TABLE log_fts;
    DROP TABLE log_records;
  `,
};
