import type { Migration } from './migration.js';

export const migration: Migration = {
  version: 6,
  name: 'API tokens with a role and an expiry; users that can be disabled',
  up: `
    -- NULL role: the token acts with its user's role.
    ALTER TABLE api_tokens ADD COLUMN role TEXT;
    ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
    ALTER TABLE users ADD COLUMN disabled_at INTEGER;
    ALTER TABLE users ADD COLUMN last_login_at INTEGER;
  `,
  down: `
    ALTER TABLE users DROP COLUMN last_login_at;
    ALTER TABLE users DROP COLUMN disabled_at;
    ALTER TABLE api_tokens DROP COLUMN expires_at;
    ALTER TABLE api_tokens DROP COLUMN role;
  `,
};
