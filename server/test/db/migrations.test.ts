import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Db } from '../../src/db/database.js';
import { migrations, type Migration } from '../../src/db/migrations/index.js';
import { migratePostgres, postgresSchemaVersion } from '../../src/db/postgres-migrate.js';
import { PostgresSql } from '../../src/db/postgres-sql.js';
import { LogsRepository } from '../../src/repositories/logs-repository.js';
import { postgresReachable, testDatabase } from '../support/postgres.js';

/**
 * A schema as both dialects can state it: tables with their columns (name, NOT NULL, a type
 * family), indexes (name, table, columns, unique, partial), foreign keys and triggers.
 */
interface Schema {
  columns: string[];
  indexes: string[];
  foreignKeys: string[];
  triggers: string[];
}

/**
 * Documented differences. SQLite's full-text index (FTS5 table log_fts with its shadow tables and
 * triggers, versions 3-4; a file of its own from 5 on) has no PostgreSQL counterpart; PostgreSQL
 * searches log_records through search_words and a GIN index: on a generated search_vector up to
 * version 18, on the table log_search_blocks from 19 on.
 */
const SQLITE_ONLY = /\blog_fts|\blog_records_fts_/;
const POSTGRES_ONLY = /^(log_records\.search_words|log_records\.search_vector|log_records_search |log_search_blocks)/;

const FAMILIES: Record<string, string> = {
  integer: 'integer', bigint: 'integer', smallint: 'integer',
  text: 'text', real: 'real', 'double precision': 'real', blob: 'blob', bytea: 'blob', tsvector: 'tsvector',
};
const family = (declared: string) => FAMILIES[declared.toLowerCase()] ?? `unknown ${declared}`;
const sorted = (lines: string[]) => [...lines].sort();

function sqliteSchema(db: Db): Schema {
  const all = <Row>(text: string, ...params: unknown[]) => db.prepare(text).all(...params) as Row[];
  const tables = all<{ name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").map((t) => t.name);
  const columns: string[] = [];
  const indexes: string[] = [];
  const foreignKeys: string[] = [];
  for (const table of tables) {
    // A primary key column is NOT NULL in PostgreSQL; SQLite reports notnull 0 for it.
    for (const c of all<{ name: string; type: string; notnull: number; pk: number }>('SELECT * FROM pragma_table_info(?)', table)) {
      columns.push(`${table}.${c.name} ${family(c.type)}${c.notnull || c.pk ? ' not null' : ''}`);
    }
    for (const i of all<{ name: string; unique: number; origin: string; partial: number }>('SELECT * FROM pragma_index_list(?)', table)) {
      const cols = all<{ name: string }>('SELECT name FROM pragma_index_info(?) ORDER BY seqno', i.name).map((c) => c.name);
      // Indexes SQLite makes for a PRIMARY KEY or UNIQUE constraint are unnamed (sqlite_autoindex_*).
      const name = i.origin === 'c' ? i.name : `(${i.origin === 'pk' ? 'primary key' : 'unique'})`;
      indexes.push(`${name} on ${table}(${cols.join(', ')})${i.unique ? ' unique' : ''}${i.partial ? ' partial' : ''}`);
    }
    if (all<{ pk: number; type: string }>('SELECT pk, type FROM pragma_table_info(?)', table).filter((c) => c.pk).length === 1) {
      // An INTEGER PRIMARY KEY is the rowid itself: SQLite lists no index for it.
      const pk = all<{ name: string; type: string }>('SELECT name, type FROM pragma_table_info(?) WHERE pk = 1', table)[0]!;
      if (pk.type.toUpperCase() === 'INTEGER') indexes.push(`(primary key) on ${table}(${pk.name}) unique`);
    }
    for (const f of all<{ table: string; from: string; to: string; on_delete: string }>('SELECT * FROM pragma_foreign_key_list(?)', table)) {
      foreignKeys.push(`${table}.${f.from} -> ${f.table}.${f.to} on delete ${f.on_delete.toLowerCase()}`);
    }
  }
  const triggers = all<{ name: string; tbl_name: string }>("SELECT name, tbl_name FROM sqlite_schema WHERE type = 'trigger'").map((t) => `${t.name} on ${t.tbl_name}`);
  const notFts = (line: string) => !SQLITE_ONLY.test(line);
  return {
    columns: sorted(columns.filter(notFts)), indexes: sorted(indexes.filter(notFts)),
    foreignKeys: sorted(foreignKeys), triggers: sorted(triggers.filter(notFts)),
  };
}

const ON_DELETE: Record<string, string> = { a: 'no action', r: 'restrict', c: 'cascade', n: 'set null', d: 'set default' };

async function postgresSchema(client: pg.Client): Promise<Schema> {
  const rows = async <Row extends pg.QueryResultRow>(text: string) => (await client.query<Row>(text)).rows;
  const columns = (await rows<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(`
    SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name <> 'schema_migrations'`))
    .map((c) => `${c.table_name}.${c.column_name} ${family(c.data_type)}${c.is_nullable === 'NO' ? ' not null' : ''}`);
  const indexes = (await rows<{ name: string; tbl: string; cols: string[]; uniq: boolean; partial: boolean; constraint_type: string | null }>(`
    SELECT i.relname AS name, t.relname AS tbl, x.indisunique AS uniq, x.indpred IS NOT NULL AS partial, c.contype AS constraint_type,
      ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS cols
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
    JOIN pg_namespace s ON s.oid = t.relnamespace LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype IN ('p', 'u')
    WHERE s.nspname = 'public' AND t.relname <> 'schema_migrations'`))
    .map((i) => {
      const name = i.constraint_type === 'p' ? '(primary key)' : i.constraint_type === 'u' ? '(unique)' : i.name;
      return `${name} on ${i.tbl}(${i.cols.join(', ')})${i.uniq ? ' unique' : ''}${i.partial ? ' partial' : ''}`;
    });
  const foreignKeys = (await rows<{ tbl: string; col: string; ref: string; refcol: string; confdeltype: string }>(`
    SELECT t.relname AS tbl, a.attname AS col, r.relname AS ref, ra.attname AS refcol, c.confdeltype
    FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = c.conkey[1] JOIN pg_attribute ra ON ra.attrelid = r.oid AND ra.attnum = c.confkey[1]
    JOIN pg_namespace s ON s.oid = t.relnamespace WHERE c.contype = 'f' AND s.nspname = 'public'`))
    .map((f) => `${f.tbl}.${f.col} -> ${f.ref}.${f.refcol} on delete ${ON_DELETE[f.confdeltype]}`);
  const triggers = (await rows<{ name: string; tbl: string }>(`
    SELECT DISTINCT trigger_name AS name, event_object_table AS tbl FROM information_schema.triggers WHERE trigger_schema = 'public'`))
    .map((t) => `${t.name} on ${t.tbl}`);
  const notSearch = (line: string) => !POSTGRES_ONLY.test(line);
  return { columns: sorted(columns.filter(notSearch)), indexes: sorted(indexes.filter(notSearch)), foreignKeys: sorted(foreignKeys), triggers: sorted(triggers) };
}

const reachable = await postgresReachable();
if (!reachable) console.warn('PostgreSQL is not reachable: the migration suite runs on SQLite only');

describe('migrations on SQLite', () => {
  it('each has its PostgreSQL text', () => {
    for (const m of migrations) expect(m.postgres.up.trim() && m.postgres.down.trim(), `migration ${m.version}`).toBeTruthy();
  });

  it('migrate down to nothing and up again', () => {
    const db = openDatabase(':memory:');
    const full = sqliteSchema(db);
    migrate(db, migrations, 0);
    expect(sqliteSchema(db)).toEqual({ columns: [], indexes: [], foreignKeys: [], triggers: [] });
    migrate(db, migrations);
    expect(sqliteSchema(db)).toEqual(full);
    db.close();
  });
});

describe.runIf(reachable)('migrations on PostgreSQL', () => {
  let database: { url: string; drop: () => Promise<void> };
  let client: pg.Client;
  beforeAll(async () => {
    database = await testDatabase({ migrated: false });
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await database?.drop();
  });

  it('make at every version, up and down, the same tables, columns, indexes, foreign keys and triggers as on SQLite', async () => {
    const db = openDatabase(':memory:', []);
    const last = migrations.at(-1)!.version;
    const versions = [...migrations.map((m) => m.version), ...migrations.map((m) => m.version - 1).reverse()];
    for (const version of versions) {
      migrate(db, migrations, version);
      await migratePostgres(database.url, migrations, version);
      expect(await postgresSchemaVersion(client), `version ${version}`).toBe(version);
      expect(await postgresSchema(client), `schema at version ${version}`).toEqual(sqliteSchema(db));
    }
    db.close();
    // Down to nothing: only the version table is left; up again to the newest.
    expect((await client.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows).toEqual([{ tablename: 'schema_migrations' }]);
    await migratePostgres(database.url);
    expect(await postgresSchemaVersion(client)).toBe(last);
    const full = openDatabase(':memory:');
    expect(await postgresSchema(client)).toEqual(sqliteSchema(full));
    full.close();
  });

  it('the store harness hands out databases at the newest version', async () => {
    const copy = await testDatabase();
    const copyClient = new pg.Client({ connectionString: copy.url });
    try {
      await copyClient.connect();
      expect(await postgresSchemaVersion(copyClient)).toBe(migrations.at(-1)!.version);
    } finally {
      await copyClient.end();
      await copy.drop();
    }
  });

  it('indexes log messages for search, and keeps the audit log append-only', async () => {
    await migratePostgres(database.url);
    await client.query(`INSERT INTO log_records (node_id, source, stream, "offset", ts, level, message, size, search_words)
      VALUES ('n', 'demo', 's', 1, 1, 2, 'Camera FAILED', 13, 'camera failed')`);
    await client.query(`INSERT INTO log_search_blocks (first_id, last_id, words)
      SELECT MIN(id), MAX(id), array_to_tsvector(ARRAY['camera', 'failed']) FROM log_records`);
    const found = await client.query(`SELECT l.message FROM log_search_blocks b JOIN log_records l ON l.id BETWEEN b.first_id AND b.last_id
      WHERE b.words @@ CAST('failed' AS tsquery)`);
    expect(found.rows).toEqual([{ message: 'Camera FAILED' }]);
    await client.query("INSERT INTO audit_log (at, action, outcome) VALUES (1, 'x', 'ok')");
    await expect(client.query('UPDATE audit_log SET outcome = $1', ['changed'])).rejects.toThrow('audit log is append-only');
    await expect(client.query('DELETE FROM audit_log')).rejects.toThrow('audit log is append-only');
  });
});

describe.runIf(reachable)('migration 19 on PostgreSQL (search blocks)', () => {
  it('finds the lines stored before it through the blocks it makes of them, a line of many words in a block of its own', async () => {
    const database = await testDatabase({ migrated: false });
    const client = new pg.Client({ connectionString: database.url });
    const sql = new PostgresSql({ url: database.url, poolSize: 2 });
    try {
      await client.connect();
      await migratePostgres(database.url, migrations, 18);
      const many = Array.from({ length: 9000 }, (_, i) => `word${i}`).join(' ');
      for (const [i, words] of ['camera failed', many, 'disk full', ''].entries()) {
        await client.query(`INSERT INTO log_records (node_id, source, stream, "offset", ts, level, message, size, search_words)
          VALUES ('n', 'demo', 's', $1, $1, 2, $2, 1, $2)`, [i, words]);
      }
      await migratePostgres(database.url);
      const blocks = await client.query<{ first_id: string; last_id: string }>('SELECT first_id, last_id FROM log_search_blocks ORDER BY first_id');
      expect(blocks.rows.map((b) => [Number(b.first_id), Number(b.last_id)])).toEqual([[1, 3], [2, 2]]);
      const logs = await LogsRepository.open(sql);
      const found = async (q: string) => (await logs.search({ q, limit: 10 })).records.map((r) => r.ts);
      expect(await found('failed')).toEqual([0]);
      expect(await found('full')).toEqual([2]);
      expect(await found('word8999')).toEqual([1]);
      expect(await found('"word17 word18"')).toEqual([1]);
    } finally {
      await sql.close();
      await client.end();
      await database.drop();
    }
  });
});

describe.runIf(reachable)('the PostgreSQL migration runner', () => {
  it('lets replicas that start together migrate once: each step is made by one of them', async () => {
    const database = await testDatabase({ migrated: false });
    try {
      await Promise.all([migratePostgres(database.url), migratePostgres(database.url), migratePostgres(database.url)]);
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      const applied = await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      await client.end();
      expect(applied.rows.map((r) => Number(r.version))).toEqual(migrations.map((m) => m.version));
    } finally {
      await database.drop();
    }
  });

  it('rolls back a step that fails, keeping the steps before it, and says which one failed', async () => {
    const database = await testDatabase({ migrated: false });
    const broken: Migration = { version: 3, name: 'broken', up: '', down: '', postgres: { up: 'CREATE TABLE half (id BIGINT); SELECT nonsense FROM nowhere', down: 'DROP TABLE half' } };
    try {
      await expect(migratePostgres(database.url, [...migrations.slice(0, 2), broken])).rejects.toThrow(/migration 3 \(broken\).*nowhere/);
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      expect(await postgresSchemaVersion(client)).toBe(2);
      expect((await client.query("SELECT to_regclass('half') AS half")).rows).toEqual([{ half: null }]);
      await client.end();
    } finally {
      await database.drop();
    }
  });

  it('names the database it cannot reach, never the password', async () => {
    await expect(migratePostgres('postgres://postgres:pw-secret@127.0.0.1:1/dvic')).rejects.toThrow(/^PostgreSQL at 127\.0\.0\.1:1\/dvic is unreachable: (?!.*pw-secret)/);
  });
});
