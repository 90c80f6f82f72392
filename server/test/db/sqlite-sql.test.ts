import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/db/database.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';

const table = { version: 1, name: 'table t', up: 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)', down: 'DROP TABLE t' };
const values = async (sql: SqliteSql) => (await sql.all<{ v: string }>('SELECT v FROM t ORDER BY id')).map((r) => r.v);
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('SqliteSql: the async store over one SQLite connection', () => {
  let db: Db;
  let sql: SqliteSql;
  beforeEach(() => {
    db = openDatabase(':memory:', [table]);
    sql = new SqliteSql(db);
  });
  afterEach(() => db.close());

  it('runs statements with positional parameters and reports changes', async () => {
    expect(await sql.run('INSERT INTO t (v) VALUES (?), (?)', ['a', 'b'])).toEqual({ changes: 2 });
    expect(await sql.get<{ v: string }>('SELECT v FROM t WHERE v = ?', ['b'])).toEqual({ v: 'b' });
    expect(await sql.get('SELECT v FROM t WHERE v = ?', ['zz'])).toBeUndefined();
    expect(await sql.runMany('INSERT INTO t (v) VALUES (?)', [['c'], ['d']])).toEqual({ changes: 2 });
    expect(await values(sql)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('commits a transaction and runs its afterCommit callbacks after the commit, in order', async () => {
    const seen: string[] = [];
    await sql.transaction(async () => {
      await sql.run('INSERT INTO t (v) VALUES (?)', ['a']);
      sql.afterCommit(() => seen.push(`first, committed: ${db.inTransaction ? 'no' : 'yes'}`));
      await tick();
      sql.afterCommit(() => seen.push('second'));
    });
    expect(seen).toEqual(['first, committed: yes', 'second']);
    expect(await values(sql)).toEqual(['a']);
  });

  it('rolls back on a throw, drops its callbacks and passes the error on', async () => {
    const seen: string[] = [];
    await expect(sql.transaction(async () => {
      await sql.run('INSERT INTO t (v) VALUES (?)', ['a']);
      sql.afterCommit(() => seen.push('never'));
      throw new Error('refused');
    })).rejects.toThrow('refused');
    expect(seen).toEqual([]);
    expect(await values(sql)).toEqual([]);
    expect(db.inTransaction).toBe(false);
  });

  it('makes statements of other async contexts wait until the transaction ends', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const transaction = sql.transaction(async () => {
      await sql.run('INSERT INTO t (v) VALUES (?)', ['inside']);
      await held;
      throw new Error('rolled back');
    });
    await tick();
    const outside = sql.run('INSERT INTO t (v) VALUES (?)', ['outside']);
    const read = values(sql);
    await tick();
    release();
    await expect(transaction).rejects.toThrow('rolled back');
    await outside;
    // Both waited, in order: the write was not rolled back with the transaction, the read never saw 'inside'.
    expect(await read).toEqual(['outside']);
    expect(await values(sql)).toEqual(['outside']);
  });

  it('runs transactions of different contexts one after the other', async () => {
    const order: string[] = [];
    await Promise.all(['a', 'b', 'c'].map((v) => sql.transaction(async () => {
      order.push(`begin ${v}`);
      await tick();
      await sql.run('INSERT INTO t (v) VALUES (?)', [v]);
      order.push(`end ${v}`);
    })));
    expect(order).toEqual(['begin a', 'end a', 'begin b', 'end b', 'begin c', 'end c']);
  });

  it('nests as savepoints: an inner failure rolls back only the inner work and its callbacks', async () => {
    const seen: string[] = [];
    await sql.transaction(async () => {
      await sql.run('INSERT INTO t (v) VALUES (?)', ['outer']);
      await expect(sql.transaction(async () => {
        await sql.run('INSERT INTO t (v) VALUES (?)', ['inner']);
        sql.afterCommit(() => seen.push('inner'));
        throw new Error('inner refused');
      })).rejects.toThrow('inner refused');
      await Promise.all(['x', 'y'].map((v) => sql.transaction(async () => {
        await tick();
        await sql.run('INSERT INTO t (v) VALUES (?)', [v]);
      })));
      sql.afterCommit(() => seen.push('outer'));
    });
    expect(await values(sql)).toEqual(['outer', 'x', 'y']);
    expect(seen).toEqual(['outer']);
  });

  it('runs afterCommit at once outside a transaction, and in work left running after one ended', async () => {
    const seen: string[] = [];
    sql.afterCommit(() => seen.push('now'));
    let later!: Promise<void>;
    await sql.transaction(async () => {
      later = (async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        sql.afterCommit(() => seen.push('after the end'));
        await sql.run('INSERT INTO t (v) VALUES (?)', ['late']);
      })();
    });
    await later;
    expect(seen).toEqual(['now', 'after the end']);
    expect(await values(sql)).toEqual(['late']);
  });

  it('a failing statement inside a transaction rolls it back and leaves the connection usable', async () => {
    await expect(sql.transaction(async () => {
      await sql.run('INSERT INTO t (v) VALUES (?)', ['a']);
      await sql.run('INSERT INTO t (v) VALUES (?)', [null]);
    })).rejects.toThrow(/NOT NULL/);
    await sql.run('INSERT INTO t (v) VALUES (?)', ['b']);
    expect(await values(sql)).toEqual(['b']);
  });
});
