import type { Migration } from './migration.js';

export const migration: Migration = {
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
};
