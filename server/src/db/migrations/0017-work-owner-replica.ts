import type { Migration } from './migration.js';

const TABLES = ['commands', 'enrollments', 'agent_updates', 'deployments'];

// The same text in both dialects (TEXT is TEXT in both).
const up = TABLES.map((t) => `ALTER TABLE ${t} ADD COLUMN owner_replica TEXT NOT NULL DEFAULT '';`).join('\n');
const down = [...TABLES].reverse().map((t) => `ALTER TABLE ${t} DROP COLUMN owner_replica;`).join('\n');

/**
 * Which replica runs a command, an enrollment, an agent update or a deployment (its work lives in
 * that process's memory). At start a replica ends only what it owned; the leader ends what a
 * replica that is gone left unfinished (docs/scale-out.md, "Work a replica leaves behind"). ''
 * for rows made before: a single server ends them as before; a lab's leader ends them as a gone
 * replica's.
 */
export const migration: Migration = {
  version: 17,
  name: 'work owner: the replica that runs each command, enrollment, update and deployment',
  up,
  down,
  postgres: { up, down },
};
