import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrate, openDatabase } from '../src/db/database.js';
import { migrations } from '../src/db/migrations.js';

describe('database', () => {
  it('opens in WAL mode with every migration applied', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-db-'));
    const db = openDatabase(path.join(dir, 'x.sqlite'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(migrations.at(-1)!.version);
    db.close();
    fs.rmSync(dir, { recursive: true });
  });

  it('migrates down to nothing and up again', () => {
    const db = openDatabase(':memory:');
    migrate(db, migrations, 0);
    expect(db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'").get()).toEqual({ n: 0 });
    migrate(db, migrations);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r: any) => r.name))
      .toEqual(expect.arrayContaining(['api_tokens', 'demos', 'log_fts', 'log_records', 'nodes', 'sessions', 'users']));
  });
});
