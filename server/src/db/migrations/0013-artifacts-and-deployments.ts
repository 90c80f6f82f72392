import type { Migration } from './migration.js';

// The same text in both dialects.
const down = `
    DROP TABLE deployments;
    DROP TABLE artifacts;
  `;

export const migration: Migration = {
  version: 13,
  name: 'artifacts (files kept for deploys, their bytes in the data dir) and deployments',
  up: `
    CREATE TABLE artifacts (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      version TEXT NOT NULL,
      size INTEGER NOT NULL,
      sha256 TEXT NOT NULL,
      format TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      created_by TEXT NOT NULL,
      UNIQUE (name, version)
    );
    CREATE TABLE deployments (
      id TEXT PRIMARY KEY,
      -- The DeploymentView as JSON (its artifact as it was when the deploy started).
      view TEXT NOT NULL,
      created_at INTEGER NOT NULL
    );
  `,
  down,
  postgres: {
    up: `
      CREATE TABLE artifacts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        format TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        UNIQUE (name, version)
      );
      CREATE TABLE deployments (
        id TEXT PRIMARY KEY,
        -- The DeploymentView as JSON (its artifact as it was when the deploy started).
        view TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
    `,
    down,
  },
};
