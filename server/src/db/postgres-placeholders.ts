/**
 * Statement text for PostgreSQL from the shared SQL (db/sql.ts): `?` placeholders become `$1..$n`.
 * A `?` inside a string literal, a quoted identifier or a comment is text, not a placeholder.
 */
export interface Converted {
  text: string;
  /** How many placeholders the statement has. */
  count: number;
}

/** Where each quoted or commented part of a statement ends, by what opens it. */
const CLOSERS: Record<string, string> = { "'": "'", '"': '"', '--': '\n', '/*': '*/' };

export function numberPlaceholders(sql: string): Converted {
  let text = '';
  let count = 0;
  let i = 0;
  while (i < sql.length) {
    const opener = sql.startsWith('--', i) ? '--' : sql.startsWith('/*', i) ? '/*' : sql[i] === "'" || sql[i] === '"' ? sql[i]! : undefined;
    if (opener) {
      // A doubled quote ('it''s') ends the literal and opens it again: the same text either way.
      const close = sql.indexOf(CLOSERS[opener]!, i + opener.length);
      const end = close < 0 ? sql.length : close + CLOSERS[opener]!.length;
      text += sql.slice(i, end);
      i = end;
    } else if (sql[i] === '?') {
      text += `$${++count}`;
      i++;
    } else {
      text += sql[i];
      i++;
    }
  }
  return { text, count };
}

/**
 * A single-row `INSERT ... VALUES (?, ..., ?) [ON CONFLICT ... DO NOTHING] [RETURNING ...]` as one
 * statement for `rows` rows, or null for any other statement. `DO UPDATE` is left out on purpose:
 * PostgreSQL refuses to update one row twice in a statement, where row-by-row the last one wins.
 */
export function multiRowInsert(sql: string, rows: number): string | null {
  const match = /^(\s*INSERT\s+INTO\s[^?'"]*?\bVALUES\s*)(\(\s*\?(?:\s*,\s*\?)*\s*\))([^?'"]*)$/is.exec(sql);
  if (!match || /\bDO\s+UPDATE\b/i.test(match[3]!)) return null;
  const [, head, tuple, tail] = match;
  return head + Array.from({ length: rows }, () => tuple).join(', ') + tail;
}
