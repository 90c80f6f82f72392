import type { Migration } from './migration.js';

/**
 * Keepalive devices (things without an agent) with their pings and status changes. Pings are
 * capped per device by the device store; ping_count keeps the total.
 */
export const migration: Migration = {
  version: 8,
  name: 'keepalive devices, their pings and status changes',
  up: `
    CREATE TABLE devices (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      labels TEXT NOT NULL DEFAULT '{}',
      node_id TEXT REFERENCES nodes(id) ON DELETE SET NULL,
      period_s INTEGER NOT NULL,
      grace_s INTEGER NOT NULL,
      token_hash TEXT NOT NULL UNIQUE,
      status TEXT NOT NULL DEFAULT 'new',
      status_since INTEGER NOT NULL,
      paused INTEGER NOT NULL DEFAULT 0,
      last_seen INTEGER,
      last_status TEXT,
      last_message TEXT,
      last_body TEXT,
      firmware TEXT,
      demo TEXT,
      numbers TEXT NOT NULL DEFAULT '{}',
      run_started_at INTEGER,
      window_from INTEGER,
      ping_count INTEGER NOT NULL DEFAULT 0,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE device_pings (
      id INTEGER PRIMARY KEY,
      device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
      at INTEGER NOT NULL,
      kind TEXT NOT NULL,
      source TEXT NOT NULL,
      status TEXT,
      message TEXT,
      body TEXT,
      numbers TEXT,
      logs TEXT,
      duration_ms INTEGER
    );
    CREATE INDEX device_pings_by_device ON device_pings (device_id, id);
    CREATE TABLE device_transitions (
      id INTEGER PRIMARY KEY,
      device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
      at INTEGER NOT NULL,
      from_status TEXT NOT NULL,
      to_status TEXT NOT NULL,
      reason TEXT NOT NULL
    );
    CREATE INDEX device_transitions_by_device ON device_transitions (device_id, at);
  `,
  down: `
    DROP TABLE device_transitions;
    DROP TABLE device_pings;
    DROP TABLE devices;
  `,
};
