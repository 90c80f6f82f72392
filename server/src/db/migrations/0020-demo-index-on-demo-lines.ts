import type { Migration } from './migration.js';

// Same text in both dialects: each reads `demo = ?` as implying `demo IS NOT NULL`.
const up = `
    DROP INDEX log_records_demo_ts;
    CREATE INDEX log_records_demo_ts ON log_records(demo, ts, id) WHERE demo IS NOT NULL;
  `;
const down = `
    DROP INDEX log_records_demo_ts;
    CREATE INDEX log_records_demo_ts ON log_records(demo, ts, id);
  `;

/**
 * The demo index holds demo lines only. System lines (the journal, container logs without a demo)
 * have no demo, no query reads them through it, and each added an entry to it: one index write
 * of five per stored line (bench/log-pipeline). Rebuilt once, which takes a while on a large table.
 */
export const migration: Migration = {
  version: 20,
  name: 'log_records_demo_ts on demo lines only',
  up,
  down,
  postgres: { up, down },
};
