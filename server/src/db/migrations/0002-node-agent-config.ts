import type { Migration } from './migration.js';

export const migration: Migration = {
  version: 2,
  name: 'per-node agent configuration',
  up: `ALTER TABLE nodes ADD COLUMN agent_config TEXT NOT NULL DEFAULT '{}';`,
  down: `ALTER TABLE nodes DROP COLUMN agent_config;`,
};
