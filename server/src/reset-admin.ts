#!/usr/bin/env node
// npm run reset-admin: resets the admin password in DVIC_DATA_DIR's database (docs/security.md).
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { DB_FILE } from './db/store.js';
import { resetAdmin } from './services/admin-reset.js';

async function main(): Promise<void> {
  const config = loadConfig();
  // Never reset a SQLite file the server does not use (until this tool opens PostgreSQL too).
  if (config.databaseUrl) throw new ConfigError('DVIC_DATABASE_URL is set: reset-admin works on the SQLite database in DVIC_DATA_DIR only, not on PostgreSQL yet');
  const file = path.join(config.dataDir, DB_FILE);
  if (!fs.existsSync(file)) throw new ConfigError(`no database at ${file}: set DVIC_DATA_DIR to the server's data directory`);
  const db = openDatabase(file);
  try {
    const reset = await resetAdmin(db, config.adminPassword);
    const password = reset.generated ? `${reset.password}   (generated now and shown only once)` : 'the password in DVIC_ADMIN_PASSWORD';
    process.stdout.write(`${reset.created ? 'Created' : 'Reset'} the ${reset.username} account in ${file}: enabled, role admin, its sessions ended.\nAdmin login: ${reset.username} / ${password}\n`);
  } finally {
    db.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`reset-admin: ${err instanceof ConfigError ? err.message : (err as Error).stack ?? err}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
