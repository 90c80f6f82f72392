import type { Migration } from './migration.js';

export const migration: Migration = {
  version: 4,
  name: 'commands and the append-only audit log',
  up: `
    CREATE TABLE commands (
      id           TEXT PRIMARY KEY,
      batch_id     TEXT,
      node_id      TEXT NOT NULL,
      user_id      INTEGER,
      username     TEXT NOT NULL,
      source_ip    TEXT,
      spec         TEXT NOT NULL,
      display      TEXT NOT NULL,
      status       TEXT NOT NULL,
      exit_code    INTEGER,
      signal       TEXT,
      stdout       TEXT NOT NULL DEFAULT '',
      stderr       TEXT NOT NULL DEFAULT '',
      truncated    INTEGER NOT NULL DEFAULT 0,
      error        TEXT,
      created_at   INTEGER NOT NULL,
      started_at   INTEGER,
      finished_at  INTEGER,
      duration_ms  REAL,
      expires_at   INTEGER
    );
    CREATE INDEX commands_node ON commands(node_id, created_at);
    CREATE INDEX commands_batch ON commands(batch_id);
    CREATE INDEX commands_created ON commands(created_at);
    CREATE TABLE audit_log (
      id        INTEGER PRIMARY KEY,
      at        INTEGER NOT NULL,
      user_id   INTEGER,
      username  TEXT,
      source_ip TEXT,
      action    TEXT NOT NULL,
      target    TEXT,
      outcome   TEXT NOT NULL,
      details   TEXT
    );
    CREATE INDEX audit_log_at ON audit_log(at);
    -- Append-only: the database itself refuses to change or remove an entry.
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
  `,
  down: `
    DROP TRIGGER audit_log_no_delete;
    DROP TRIGGER audit_log_no_update;
    DROP TABLE audit_log;
    DROP TABLE commands;
  `,
};
