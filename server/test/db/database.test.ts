import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpointer } from '../../src/db/checkpointer.js';
import { migrate, openDatabase } from '../../src/db/database.js';
import { migrations } from '../../src/db/migrations/index.js';

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
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => (r as { name: string }).name))
      .toEqual(expect.arrayContaining(['api_tokens', 'audit_log', 'commands', 'demos', 'log_records', 'nodes', 'sessions', 'users']));
  });

  it('checkpoints the WAL from a worker thread, and leaves it empty on stop', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-db-'));
    const file = path.join(dir, 'x.sqlite');
    const db = openDatabase(file);
    const checkpointer = new Checkpointer(db, file, 100);
    await new Promise((r) => setTimeout(r, 300));
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const insert = db.prepare('INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)');
    db.transaction(() => { for (let i = 0; i < 5000; i++) insert.run(`u${i}`, 'x'.repeat(200), i); })();
    expect(fs.statSync(`${file}-wal`).size).toBeGreaterThan(0);
    await checkpointer.stop();
    expect(fs.statSync(`${file}-wal`).size).toBe(0);
    db.close();
    fs.rmSync(dir, { recursive: true });
  });

  it('keeps a process with nothing else to do alive until the last checkpoint, then closes the database', () => {
    // Built code (npm test builds first): a plain node process, as the server and its scripts run.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-db-'));
    const dist = path.resolve(__dirname, '../../dist/db');
    const script = `
      import { Checkpointer } from '${dist}/checkpointer.js';
      import { openDatabase } from '${dist}/database.js';
      const db = openDatabase('${dir}/x.sqlite');
      const checkpointer = new Checkpointer(db, '${dir}/x.sqlite', 50);
      await checkpointer.stop();
      db.close();
      console.log('closed');`;
    expect(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }).trim()).toBe('closed');
    fs.rmSync(dir, { recursive: true });
  });
});
