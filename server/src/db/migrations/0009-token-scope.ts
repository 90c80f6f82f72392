import type { Migration } from './migration.js';

export const migration: Migration = {
  version: 9,
  name: 'API tokens limited to a scope (metrics: only GET /metrics)',
  up: `
    ALTER TABLE api_tokens ADD COLUMN scope TEXT;
  `,
  down: `
    ALTER TABLE api_tokens DROP COLUMN scope;
  `,
};
