#!/usr/bin/env node
// npm run reset-admin: resets the admin password in the server's database, DVIC_DATABASE_URL or DVIC_DATA_DIR's (docs/security.md).
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { migratePostgres } from './db/postgres-migrate.js';
import { describeDatabase, PostgresSql } from './db/postgres-sql.js';
import type { Sql } from './db/sql.js';
import { SqliteSql } from './db/sqlite-sql.js';
import { DB_FILE } from './db/store.js';
import { resetAdmin } from './services/admin-reset.js';

async function main(): Promise<void> {
  const config = loadConfig();
  if (config.databaseUrl) return resetIn(await openPostgres(config.databaseUrl), describeDatabase(config.databaseUrl), config.adminPassword);
  const file = path.join(config.dataDir, DB_FILE);
  if (!fs.existsSync(file)) throw new ConfigError(`no database at ${file}: set DVIC_DATA_DIR to the server's data directory`);
  const db = openDatabase(file);
  try {
    await resetIn(new SqliteSql(db), file, config.adminPassword);
  } finally {
    db.close();
  }
}

/** The servers' PostgreSQL (DVIC_DATABASE_URL), migrated as a server starting would. */
async function openPostgres(url: string): Promise<Sql> {
  await migratePostgres(url);
  return new PostgresSql({ url, poolSize: 1 });
}

async function resetIn(sql: Sql, where: string, adminPassword: string | undefined): Promise<void> {
  try {
    const reset = await resetAdmin(sql, adminPassword);
    const password = reset.generated ? `${reset.password}   (generated now and shown only once)` : 'the password in DVIC_ADMIN_PASSWORD';
    process.stdout.write(`${reset.created ? 'Created' : 'Reset'} the ${reset.username} account in ${where}: enabled, role admin, its sessions ended.\nAdmin login: ${reset.username} / ${password}\n`);
  } finally {
    await sql.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`reset-admin: ${err instanceof ConfigError ? err.message : (err as Error).stack ?? err}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
