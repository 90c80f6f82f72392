import type { Migration } from './migration.js';

// The same text in both dialects.
const down = `
    ALTER TABLE users DROP COLUMN last_login_at;
    ALTER TABLE users DROP COLUMN disabled_at;
    ALTER TABLE api_tokens DROP COLUMN expires_at;
    ALTER TABLE api_tokens DROP COLUMN role;
  `;

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
  down,
  postgres: {
    up: `
      ALTER TABLE api_tokens ADD COLUMN role TEXT;
      ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
      ALTER TABLE users ADD COLUMN disabled_at BIGINT;
      ALTER TABLE users ADD COLUMN last_login_at BIGINT;
    `,
    down,
  },
};
