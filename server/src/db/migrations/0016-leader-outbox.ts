import type { Migration } from './migration.js';

// The same text in both dialects.
const down = `
    DROP TABLE dvic_leader_outbox;
  `;

/**
 * What the leader of a scaled-out lab tells the world (alert notifications), each under a unique
 * key (cluster/leader-outbox.ts). Only PostgreSQL labs use it; SQLite has it so that both
 * dialects keep one schema.
 */
export const migration: Migration = {
  version: 16,
  name: 'leader outbox: notifications recorded once by the leader, sent after commit',
  up: `
    CREATE TABLE dvic_leader_outbox (
      key TEXT PRIMARY KEY,
      payload TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      sent_at INTEGER
    );
  `,
  down,
  postgres: {
    up: `
      CREATE TABLE dvic_leader_outbox (
        key TEXT PRIMARY KEY,
        payload TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        sent_at BIGINT
      );
    `,
    down,
  },
};
