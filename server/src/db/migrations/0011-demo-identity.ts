import type { Migration } from './migration.js';

// The same text in both dialects.
const down = `
    DROP TABLE demo_expectations;
    DROP TABLE demo_entities;
    ALTER TABLE demos DROP COLUMN exit_code;
    ALTER TABLE demos DROP COLUMN ended;
  `;

export const migration: Migration = {
  version: 11,
  name: 'demos as (node, name) with runs: how a run ended, expected demos and their schedules, label rules',
  up: `
    ALTER TABLE demos ADD COLUMN ended TEXT;
    ALTER TABLE demos ADD COLUMN exit_code INTEGER;
    CREATE TABLE demo_entities (
      id         TEXT PRIMARY KEY,
      node_id    TEXT NOT NULL,
      name       TEXT NOT NULL,
      expected   INTEGER NOT NULL DEFAULT 0,
      schedule   TEXT,
      notes      TEXT,
      created_at INTEGER NOT NULL,
      UNIQUE (node_id, name)
    );
    CREATE TABLE demo_expectations (
      id          TEXT PRIMARY KEY,
      label_key   TEXT NOT NULL,
      label_value TEXT NOT NULL,
      name        TEXT NOT NULL,
      schedule    TEXT,
      created_at  INTEGER NOT NULL,
      UNIQUE (label_key, label_value, name)
    );
  `,
  down,
  postgres: {
    up: `
      ALTER TABLE demos ADD COLUMN ended TEXT;
      ALTER TABLE demos ADD COLUMN exit_code BIGINT;
      CREATE TABLE demo_entities (
        id         TEXT PRIMARY KEY,
        node_id    TEXT NOT NULL,
        name       TEXT NOT NULL,
        expected   BIGINT NOT NULL DEFAULT 0,
        schedule   TEXT,
        notes      TEXT,
        created_at BIGINT NOT NULL,
        UNIQUE (node_id, name)
      );
      CREATE TABLE demo_expectations (
        id          TEXT PRIMARY KEY,
        label_key   TEXT NOT NULL,
        label_value TEXT NOT NULL,
        name        TEXT NOT NULL,
        schedule    TEXT,
        created_at  BIGINT NOT NULL,
        UNIQUE (label_key, label_value, name)
      );
    `,
    down,
  },
};
