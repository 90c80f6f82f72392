import type { Migration } from './migration.js';

export const migration: Migration = {
  version: 12,
  name: 'demo actions: the start, stop and restart commands an operator set on a demo',
  up: `ALTER TABLE demo_entities ADD COLUMN actions TEXT;`,
  down: `ALTER TABLE demo_entities DROP COLUMN actions;`,
};
