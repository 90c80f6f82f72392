import type { Migration } from './migration.js';

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
  down: `
    DROP TABLE agent_updates;
  `,
};
