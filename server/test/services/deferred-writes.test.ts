// Writes that wait for the disk, through the async Sql: a write a full database refuses waits in
// memory, later ones queue behind it in order, and all are stored once there is room. The full
// disk is real: SQLite's max_page_count makes the database refuse to grow (SQLITE_FULL).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { DeferredWrites } from '../../src/services/deferred-writes.js';
import type { StoreFailure } from '../../src/services/store-failure.js';
import { memoryDb, silentLog } from '../support/memory-db.js';

describe('deferred writes through the async Sql', () => {
  let db: Db;
  let sql: SqliteSql;
  let failures: StoreFailure[];
  let deferred: DeferredWrites;
  beforeEach(() => {
    db = memoryDb();
    sql = new SqliteSql(db);
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, key TEXT NOT NULL, text TEXT NOT NULL UNIQUE)');
    failures = [];
    deferred = new DeferredWrites((failure) => failures.push(failure), silentLog);
  });
  afterEach(() => db.close());

  const note = (key: string, text: string) => () => sql.run('INSERT INTO notes (key, text) VALUES (?, ?)', [key, text]);
  const stored = () => db.prepare('SELECT text FROM notes ORDER BY id').all().map((r) => (r as { text: string }).text);

  /** Fills the database up to a page limit it may not pass; room() lifts it. */
  function fillDisk(): () => void {
    const pages = (db.pragma('page_count', { simple: true }) as number) + 2;
    db.pragma(`max_page_count = ${pages}`);
    const filler = db.prepare('INSERT INTO notes (key, text) VALUES (?, ?)');
    let i = 0;
    // Large rows first, then ever smaller ones, until not even a small row fits.
    for (const size of [2000, 200, 20, 1]) {
      try {
        for (;;) filler.run('filler', `${i++} ${'x'.repeat(size)}`);
      } catch (err) {
        expect((err as { code: string }).code).toBe('SQLITE_FULL');
      }
    }
    return () => {
      db.exec("DELETE FROM notes WHERE key = 'filler'");
      db.pragma('max_page_count = 1073741823');
    };
  }

  it('stores at once while there is room', async () => {
    expect(await deferred.run('a', note('a', 'first'))).toBe(true);
    expect(stored()).toEqual(['first']);
    expect(deferred.size).toBe(0);
  });

  it('keeps refused writes in order, the latest per key, and stores them all once there is room', async () => {
    const room = fillDisk();
    expect(await deferred.run('session:1', note('session:1', 'signed in'))).toBe(false);
    expect(failures.map((f) => f.code)).toEqual(['storage_full']);
    expect(await deferred.run('audit:1', note('audit', 'audit 1'))).toBe(false);
    expect(await deferred.run('session:1', note('session:1', 'signed out'))).toBe(false);
    expect(await deferred.run('audit:2', note('audit', 'audit 2'))).toBe(false);
    expect(deferred.size).toBe(3);
    room();
    await deferred.retry();
    expect(stored()).toEqual(['audit 1', 'signed out', 'audit 2']);
    expect(deferred.size).toBe(0);
    expect(await deferred.run('audit:3', note('audit', 'audit 3'))).toBe(true);
  });

  it('passes an error that is not the disk\'s to the caller and keeps nothing of it', async () => {
    await deferred.run('a', note('a', 'same'));
    await expect(deferred.run('b', note('b', 'same'))).rejects.toThrow(/UNIQUE/);
    expect(deferred.size).toBe(0);
    expect(failures).toEqual([]);
  });

  it('writes the writes of one key in the order they were made', async () => {
    const order: string[] = [];
    const slow = (text: string, ms: number) => async () => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      order.push(text);
      await sql.run('INSERT INTO notes (key, text) VALUES (?, ?)', ['k', text]);
    };
    await Promise.all([deferred.run('k', slow('first', 30)), deferred.run('k', slow('second', 0))]);
    expect(order).toEqual(['first', 'second']);
    expect(stored()).toEqual(['first', 'second']);
  });

  it('keeps a write of a key made while the retry stores the waiting write of that key', async () => {
    const room = fillDisk();
    const big = (text: string) => `${text} ${'y'.repeat(3000)}`;
    expect(await deferred.run('k', note('k', big('first')))).toBe(false);
    await deferred.settled();
    room();
    const retried = deferred.retry();
    // The retry is awaiting 'first' now: a newer write of the same key must not be dropped with it.
    const second = deferred.run('k', note('k', big('second')));
    await retried;
    expect(await second).toBe(true);
    expect(stored().map((text) => text.split(' ')[0])).toEqual(['first', 'second']);
    expect(deferred.size).toBe(0);
  });

  it('still answers a synchronous write synchronously (stores not converted yet)', () => {
    const insert = db.prepare('INSERT INTO notes (key, text) VALUES (?, ?)');
    expect(deferred.run('sync', () => { insert.run('sync', 'now'); })).toBe(true);
    expect(stored()).toEqual(['now']);
    const room = fillDisk();
    expect(deferred.run('sync', () => { insert.run('sync', 'later'); })).toBe(false);
    room();
    void deferred.retry();
    expect(stored()).toEqual(['now', 'later']);
  });
});
