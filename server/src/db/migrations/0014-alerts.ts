import type { Migration } from './migration.js';

// The same text in both dialects.
const down = `
    DROP TABLE alert_settings;
    DROP TABLE alert_deliveries;
    DROP TABLE alert_mutes;
    DROP TABLE alerts;
    DROP TABLE alert_channels;
    DROP TABLE alert_rules;
  `;

export const migration: Migration = {
  version: 14,
  name: 'alerts: rules, channels, alerts (firing and history), mutes and the delivery log',
  up: `
    CREATE TABLE alert_rules (
      id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, threshold REAL, for_s INTEGER NOT NULL,
      scope TEXT NOT NULL, severity TEXT NOT NULL, enabled INTEGER NOT NULL, repeat_s INTEGER, channels TEXT,
      builtin INTEGER NOT NULL, created_at INTEGER NOT NULL
    );
    CREATE TABLE alert_channels (
      id TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL, url TEXT, secret TEXT, chat_id TEXT, email TEXT,
      enabled INTEGER NOT NULL, created_at INTEGER NOT NULL
    );
    CREATE TABLE alerts (
      id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL, body TEXT NOT NULL,
      started_at INTEGER NOT NULL, resolved_at INTEGER
    );
    CREATE INDEX alerts_state ON alerts (state, started_at);
    CREATE UNIQUE INDEX alerts_one_firing ON alerts (rule_id, key) WHERE state = 'firing';
    CREATE TABLE alert_mutes (
      id TEXT PRIMARY KEY, node_id TEXT, demo TEXT, device_id TEXT, rule_id TEXT, starts_at INTEGER NOT NULL,
      ends_at INTEGER NOT NULL, reason TEXT, created_by TEXT, created_at INTEGER NOT NULL
    );
    CREATE TABLE alert_deliveries (
      id TEXT PRIMARY KEY, channel_id TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL
    );
    CREATE INDEX alert_deliveries_channel ON alert_deliveries (channel_id, created_at);
    -- The default rules are seeded once, by the server, on the first start after this migration.
    CREATE TABLE alert_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO alert_settings (key, value) VALUES ('default_rules', 'pending');
  `,
  down,
  postgres: {
    up: `
      CREATE TABLE alert_rules (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, threshold DOUBLE PRECISION, for_s BIGINT NOT NULL,
        scope TEXT NOT NULL, severity TEXT NOT NULL, enabled BIGINT NOT NULL, repeat_s BIGINT, channels TEXT,
        builtin BIGINT NOT NULL, created_at BIGINT NOT NULL
      );
      CREATE TABLE alert_channels (
        id TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL, url TEXT, secret TEXT, chat_id TEXT, email TEXT,
        enabled BIGINT NOT NULL, created_at BIGINT NOT NULL
      );
      CREATE TABLE alerts (
        id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL, body TEXT NOT NULL,
        started_at BIGINT NOT NULL, resolved_at BIGINT
      );
      CREATE INDEX alerts_state ON alerts (state, started_at);
      CREATE UNIQUE INDEX alerts_one_firing ON alerts (rule_id, key) WHERE state = 'firing';
      CREATE TABLE alert_mutes (
        id TEXT PRIMARY KEY, node_id TEXT, demo TEXT, device_id TEXT, rule_id TEXT, starts_at BIGINT NOT NULL,
        ends_at BIGINT NOT NULL, reason TEXT, created_by TEXT, created_at BIGINT NOT NULL
      );
      CREATE TABLE alert_deliveries (
        id TEXT PRIMARY KEY, channel_id TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL
      );
      CREATE INDEX alert_deliveries_channel ON alert_deliveries (channel_id, created_at);
      -- The default rules are seeded once, by the server, on the first start after this migration.
      CREATE TABLE alert_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO alert_settings (key, value) VALUES ('default_rules', 'pending');
    `,
    down,
  },
};
