/**
 * A numbered schema migration: one file per step (NNNN-what.ts), run once, in order, inside a
 * transaction; the applied version is kept in PRAGMA user_version. Never edit a released
 * migration: add a new file.
 */
export interface Migration {
  version: number;
  name: string;
  up: string;
  down: string;
}
