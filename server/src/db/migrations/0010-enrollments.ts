import type { Migration } from './migration.js';

// The same text in both dialects.
const down = `
    DROP TABLE enrollment_tokens;
    DROP TABLE node_ssh_hosts;
    DROP TABLE enrollments;
  `;

export const migration: Migration = {
  version: 10,
  name: 'enrollments (adding machines over SSH), the SSH host keys met, and install tokens',
  up: `
    CREATE TABLE enrollments (
      id TEXT PRIMARY KEY,
      -- The EnrollmentView as JSON: never a password or a private key.
      view TEXT NOT NULL,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE node_ssh_hosts (
      host TEXT NOT NULL,
      port INTEGER NOT NULL,
      node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
      host_key_fingerprint TEXT NOT NULL,
      PRIMARY KEY (host, port)
    );
    CREATE TABLE enrollment_tokens (
      id TEXT PRIMARY KEY,
      token_hash TEXT NOT NULL UNIQUE,
      labels TEXT NOT NULL,
      max_uses INTEGER NOT NULL,
      uses INTEGER NOT NULL DEFAULT 0,
      expires_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL
    );
  `,
  down,
  postgres: {
    up: `
      CREATE TABLE enrollments (
        id TEXT PRIMARY KEY,
        -- The EnrollmentView as JSON: never a password or a private key.
        view TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE node_ssh_hosts (
        host TEXT NOT NULL,
        port BIGINT NOT NULL,
        node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        host_key_fingerprint TEXT NOT NULL,
        PRIMARY KEY (host, port)
      );
      CREATE TABLE enrollment_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        labels TEXT NOT NULL,
        max_uses BIGINT NOT NULL,
        uses BIGINT NOT NULL DEFAULT 0,
        expires_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL
      );
    `,
    down,
  },
};
