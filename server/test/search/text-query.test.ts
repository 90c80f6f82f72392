// What `q` means is one thing: the same cases run against the matcher the live tail uses, the
// REST log search, the command history and the audit log.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { AuditRepository } from '../../src/repositories/audit-repository.js';
import { CommandsRepository, type CommandRecord } from '../../src/repositories/commands-repository.js';
import { LogsRepository } from '../../src/repositories/logs-repository.js';
import { indexText, matchesText, parseTextQuery, unicodeWords, words } from '../../src/search/text-query.js';
import { SEARCH_SCHEMA } from '../../src/db/log-search-index.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { memoryDb, newRecord, NODE_ID } from '../support/memory-db.js';
import { CASES, TEXTS } from '../support/text-cases.js';

let db: Db;
beforeEach(() => { db = memoryDb(); });
afterEach(() => db.close());

type Search = (q: string) => string[] | Promise<string[]>;

const searches: Record<string, (db: Db) => Search | Promise<Search>> = {
  'live tail matcher': () => (q) => {
    const query = parseTextQuery(q);
    return TEXTS.filter((t) => query === null || matchesText(query, t));
  },
  'REST logs (records the full-text index has reached)': async (db) => {
    const logs = await LogsRepository.open(new SqliteSql(db));
    const stored = await logs.insertNew(TEXTS.map((t, i) => newRecord(i, t)));
    indexAsTheWorkerDoes(db, stored);
    return async (q) => (await logs.search({ q, limit: 100 })).records.map((r) => r.message).reverse();
  },
  'REST logs (records the index has not reached yet)': async (db) => {
    const logs = await LogsRepository.open(new SqliteSql(db));
    await logs.insertNew(TEXTS.map((t, i) => newRecord(i, t)));
    return async (q) => (await logs.search({ q, limit: 100 })).records.map((r) => r.message).reverse();
  },
  commands: async (db) => {
    const commands = new CommandsRepository(new SqliteSql(db));
    await commands.insert(TEXTS.map((t, i) => command(i, t)));
    return async (q) => (await commands.search({ q, limit: 100 })).commands.map((c) => c.command).reverse();
  },
  audit: async (db) => {
    const audit = new AuditRepository(new SqliteSql(db));
    for (const t of TEXTS) await audit.append({ user_id: null, username: 'admin', source_ip: null, action: 'note', target: null, outcome: 'ok', details: { text: t } });
    return async (q) => (await audit.search({ q, limit: 100 })).entries.map((e) => (e.details as { text: string }).text).reverse();
  },
};

/** What server/workers/log-search-indexer.mjs does with new records: folded words into the index. */
function indexAsTheWorkerDoes(db: Db, records: { id: number; message: string }[]): void {
  const insert = db.prepare(`INSERT INTO ${SEARCH_SCHEMA}.log_fts (rowid, message) VALUES (?, ?)`);
  for (const r of records) insert.run(r.id, indexText(r.message));
  db.prepare(`UPDATE ${SEARCH_SCHEMA}.index_state SET indexed_up_to = ?`).run(records.at(-1)!.id);
}

function command(i: number, text: string): CommandRecord {
  return {
    id: `c${i}`, batch_id: null, node_id: NODE_ID, user: 'admin', userId: null, source_ip: null, command: text, spec: { command: text, timeout_s: 1 },
    status: 'succeeded', exit_code: 0, signal: null, stdout: '', stderr: '', truncated: false, error: null,
    created_at: 1000 + i, started_at: null, finished_at: null, duration_ms: null, expires_at: null,
  };
}

describe.each(Object.keys(searches))('q in the %s', (name) => {
  it.each(CASES)('%s', async (q, expected) => {
    expect(await (await searches[name]!(db))(q)).toEqual(expected);
  });
});

describe('words of ASCII text (the shortcut most log lines take)', () => {
  it('are exactly the words the general rule finds, for every ASCII character and for random lines', () => {
    const ascii = Array.from({ length: 128 }, (_, c) => String.fromCharCode(c));
    for (const c of ascii) expect(words(`ab${c}Cd${c}9`), JSON.stringify(c)).toEqual(unicodeWords(`ab${c}Cd${c}9`));
    let seed = 42;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let line = 0; line < 2000; line++) {
      const text = Array.from({ length: next() % 80 }, () => ascii[next() % 128]).join('');
      expect(words(text), JSON.stringify(text)).toEqual(unicodeWords(text));
    }
  });
});
