import type { Migration } from './migration.js';

const TABLES = ['commands', 'enrollments', 'agent_updates', 'deployments'] as const;

/**
 * What each table holds under way, as the repositories ask it (their queries name these states as
 * literals: a partial index serves only a WHERE that implies its own). Written out here, not
 * imported: a migration stays what it was when the code moves on.
 */
const UNFINISHED = {
  commands: "status IN ('queued', 'running')",
  enrollments: "STATE IN ('running', 'awaiting_host_key')",
  agent_updates: "STATE IN ('running', 'paused')",
  deployments: "STATE IN ('running', 'paused', 'rolling_back')",
} as const;

/** The state inside a JSON view, in each dialect's own operator. */
const STATE = { sqlite: "json_extract(view, '$.state')", postgres: "(view::jsonb ->> 'state')" } as const;

// The leader's sweep for gone replicas (every lease period) asks which owners have work under way:
// indexed on the few unfinished rows only, it never reads the tables' history.
const indexes = (dialect: keyof typeof STATE) => TABLES.map((t) =>
  `CREATE INDEX ${t}_unfinished_owner ON ${t} (owner_replica) WHERE ${UNFINISHED[t].replace('STATE', STATE[dialect])};`);

// The columns: the same text in both dialects (TEXT is TEXT in both).
const up = (dialect: keyof typeof STATE) => [
  ...TABLES.map((t) => `ALTER TABLE ${t} ADD COLUMN owner_replica TEXT NOT NULL DEFAULT '';`), ...indexes(dialect),
].join('\n');
const down = [...TABLES].reverse().map((t) => `DROP INDEX ${t}_unfinished_owner;\nALTER TABLE ${t} DROP COLUMN owner_replica;`).join('\n');

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
  up: up('sqlite'),
  down,
  postgres: { up: up('postgres'), down },
};
