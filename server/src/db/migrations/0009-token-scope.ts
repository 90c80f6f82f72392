import type { Migration } from './migration.js';

// The same text in both dialects.
const up = `
    ALTER TABLE api_tokens ADD COLUMN scope TEXT;
  `;
const down = `
    ALTER TABLE api_tokens DROP COLUMN scope;
  `;

export const migration: Migration = {
  version: 9,
  name: 'API tokens limited to a scope (metrics: only GET /metrics)',
  up,
  down,
  postgres: { up, down },
};
