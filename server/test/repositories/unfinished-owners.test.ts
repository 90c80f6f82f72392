// The leader's sweep for gone replicas asks, every lease period, which replicas own work under way
// (cluster-state.ts): each table answers from its partial index on unfinished rows (migration
// 0017), never by reading its whole history.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Sql, SqlValue } from '../../src/db/sql.js';
import { AgentUpdatesRepository } from '../../src/repositories/agent-updates-repository.js';
import { CommandsRepository } from '../../src/repositories/commands-repository.js';
import { DeploymentsRepository } from '../../src/repositories/deployments-repository.js';
import { EnrollmentsRepository } from '../../src/repositories/enrollments-repository.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

/** The real store, the text and parameters of each query the repository sends noted on the way. */
function noting(sql: Sql, sent: { text: string; params: readonly SqlValue[] }[]): Sql {
  return new Proxy(sql, {
    get(target, key, receiver) {
      if (key !== 'all') return Reflect.get(target, key, receiver) as unknown;
      return (text: string, params: readonly SqlValue[] = []) => {
        sent.push({ text, params });
        return target.all(text, params);
      };
    },
  });
}

/** How the database would run a query: SQLite's plan, or PostgreSQL's with sequential scans priced out (its tables here are tiny). */
async function plan(sql: Sql, text: string, params: readonly SqlValue[]): Promise<string> {
  if (sql.dialect === 'sqlite') return (await sql.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${text}`, params)).map((r) => r.detail).join('\n');
  return sql.transaction(async () => {
    await sql.run('SET LOCAL enable_seqscan = off');
    return (await sql.all<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, params)).map((r) => r['QUERY PLAN']).join('\n');
  });
}

describe.each(storeKinds)('owners of unfinished work on $name', (kind) => {
  let store: StoreUnderTest;
  beforeEach(async () => { store = await kind.open(); });
  afterEach(async () => { await store.close(); });

  const tables = [
    ['commands', (sql: Sql) => new CommandsRepository(sql).unfinishedOwners()],
    ['enrollments', (sql: Sql) => new EnrollmentsRepository(sql).unfinishedOwners()],
    ['agent_updates', (sql: Sql) => new AgentUpdatesRepository(sql).unfinishedOwners()],
    ['deployments', (sql: Sql) => new DeploymentsRepository(sql).unfinishedOwners()],
  ] as const;

  it.each(tables)('%s are found through the partial index on unfinished rows', async (table, owners) => {
    const sent: { text: string; params: readonly SqlValue[] }[] = [];
    expect(await owners(noting(store.sql, sent))).toEqual([]);
    expect(sent).toHaveLength(1);
    expect(await plan(store.sql, sent[0]!.text, sent[0]!.params)).toContain(`${table}_unfinished_owner`);
  });
});
