import type { Migration } from './migration.js';

// The same text in both dialects.
const down = `
    ALTER TABLE demos DROP COLUMN trusted;
    ALTER TABLE demos DROP COLUMN file_uid;
  `;

export const migration: Migration = {
  version: 7,
  name: 'the owner of a demo log file, and whether it matches the demo it claims',
  up: `
    ALTER TABLE demos ADD COLUMN file_uid INTEGER;
    ALTER TABLE demos ADD COLUMN trusted INTEGER NOT NULL DEFAULT 1;
  `,
  down,
  postgres: {
    up: `
      ALTER TABLE demos ADD COLUMN file_uid BIGINT;
      ALTER TABLE demos ADD COLUMN trusted BIGINT NOT NULL DEFAULT 1;
    `,
    down,
  },
};
