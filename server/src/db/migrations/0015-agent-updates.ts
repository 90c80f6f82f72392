import type { Migration } from './migration.js';

// The same text in both dialects.
const down = `
    DROP TABLE agent_updates;
  `;

export const migration: Migration = {
  version: 15,
  name: 'agent updates: each rollout as its view (nodes, steps, results)',
  up: `
    CREATE TABLE agent_updates (
      id TEXT PRIMARY KEY,
      -- The AgentUpdateView as JSON.
      view TEXT NOT NULL,
      created_at INTEGER NOT NULL
    );
    CREATE INDEX agent_updates_created ON agent_updates (created_at);
  `,
  down,
  postgres: {
    up: `
      CREATE TABLE agent_updates (
        id TEXT PRIMARY KEY,
        -- The AgentUpdateView as JSON.
        view TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX agent_updates_created ON agent_updates (created_at);
    `,
    down,
  },
};
