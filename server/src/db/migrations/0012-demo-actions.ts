import type { Migration } from './migration.js';

// The same text in both dialects.
const up = `ALTER TABLE demo_entities ADD COLUMN actions TEXT;`;
const down = `ALTER TABLE demo_entities DROP COLUMN actions;`;

export const migration: Migration = {
  version: 12,
  name: 'demo actions: the start, stop and restart commands an operator set on a demo',
  up,
  down,
  postgres: { up, down },
};
