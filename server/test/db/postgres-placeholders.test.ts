import { describe, expect, it } from 'vitest';
import { multiRowInsert, numberPlaceholders } from '../../src/db/postgres-placeholders.js';

describe('PostgreSQL statement text from the shared SQL', () => {
  it('numbers each ? placeholder in order', () => {
    expect(numberPlaceholders('SELECT * FROM t WHERE a = ? AND b IN (?, ?) LIMIT ? OFFSET ?')).toEqual({
      text: 'SELECT * FROM t WHERE a = $1 AND b IN ($2, $3) LIMIT $4 OFFSET $5', count: 5,
    });
  });

  it('leaves a ? in string literals, quoted identifiers and comments as it is', () => {
    const sql = `SELECT 'it''s ?', "col?" FROM t -- where?\nWHERE a = ? /* or ? */ AND b = '?'`;
    expect(numberPlaceholders(sql)).toEqual({ text: `SELECT 'it''s ?', "col?" FROM t -- where?\nWHERE a = $1 /* or ? */ AND b = '?'`, count: 1 });
  });

  it('keeps an unterminated literal as text (the database reports the syntax error)', () => {
    expect(numberPlaceholders(`SELECT ? || 'open ?`)).toEqual({ text: `SELECT $1 || 'open ?`, count: 1 });
  });

  it('makes a single-row INSERT ... VALUES a multi-row one, keeping ON CONFLICT DO NOTHING and RETURNING', () => {
    expect(multiRowInsert('INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO NOTHING', 3))
      .toBe('INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?) ON CONFLICT (a) DO NOTHING');
    expect(multiRowInsert('insert into t (a) values (?) returning id', 2)).toBe('insert into t (a) values (?), (?) returning id');
  });

  it('leaves other statements to run row by row', () => {
    expect(multiRowInsert('INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO UPDATE SET b = excluded.b', 2)).toBeNull();
    expect(multiRowInsert("INSERT INTO t (a, b) VALUES (?, 'x')", 2)).toBeNull();
    expect(multiRowInsert('INSERT INTO t (a) SELECT a FROM u WHERE b = ?', 2)).toBeNull();
    expect(multiRowInsert('UPDATE t SET a = ? WHERE b = ?', 2)).toBeNull();
  });
});
