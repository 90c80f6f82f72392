import type { Migration } from './migration.js';

// The same text in both dialects.
const up = `ALTER TABLE nodes ADD COLUMN agent_config TEXT NOT NULL DEFAULT '{}';`;
const down = `ALTER TABLE nodes DROP COLUMN agent_config;`;

export const migration: Migration = {
  version: 2,
  name: 'per-node agent configuration',
  up,
  down,
  postgres: { up, down },
};
