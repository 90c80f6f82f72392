/**
 * Numbered schema migrations. Each runs once, in order, inside a transaction; the applied
 * version is kept in PRAGMA user_version. Never edit a released migration: add a new one.
 */
export interface Migration {
  version: number;
  name: string;
  up: string;
  down: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'users, sessions, api tokens, nodes',
    up: `
      CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role          TEXT NOT NULL DEFAULT 'admin',
        created_at    INTEGER NOT NULL
      );
      CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX sessions_expires ON sessions(expires_at);
      CREATE TABLE api_tokens (
        id           INTEGER PRIMARY KEY,
        user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        prefix       TEXT NOT NULL,
        token_hash   TEXT NOT NULL UNIQUE,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at   INTEGER
      );
      CREATE TABLE nodes (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        labels        TEXT NOT NULL DEFAULT '{}',
        public_key    TEXT NOT NULL,
        is_local      INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        revoked_at    INTEGER,
        status        TEXT NOT NULL DEFAULT 'offline',
        status_since  INTEGER NOT NULL,
        last_seen     INTEGER,
        agent_version TEXT,
        host          TEXT,
        hardware      TEXT,
        hardware_at   INTEGER
      );
    `,
    down: `
      DROP TABLE nodes;
      DROP TABLE api_tokens;
      DROP TABLE sessions;
      DROP TABLE users;
    `,
  },
  {
    version: 2,
    name: 'per-node agent configuration',
    up: `ALTER TABLE nodes ADD COLUMN agent_config TEXT NOT NULL DEFAULT '{}';`,
    down: `ALTER TABLE nodes DROP COLUMN agent_config;`,
  },
  {
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
  },
  {
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
  },
  {
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
  },
];
