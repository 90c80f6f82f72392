import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { DemoRegistry, MAX_DEAD_RUNS_PER_DEMO, MAX_DEAD_RUNS_PER_NODE } from '../../src/live/demo-registry.js';
import { DemosRepository } from '../../src/repositories/demos-repository.js';
import { DeferredWrites } from '../../src/services/deferred-writes.js';
import { memoryDb, NODE_ID, silentLog } from '../support/memory-db.js';

let db: Db;
let sql: SqliteSql;
let deferred: DeferredWrites;
let demos: DemoRegistry;
beforeEach(async () => {
  db = memoryDb();
  sql = new SqliteSql(db);
  deferred = new DeferredWrites(() => undefined, silentLog);
  demos = await new DemoRegistry(new DemosRepository(sql), deferred).load();
});
afterEach(() => db.close());

const token = (i: number) => `tok${String(i).padStart(19, '0')}`;

describe('demo registry', () => {
  it('keeps every live demo and only the newest dead runs when thousands come and go', async () => {
    const removed: string[] = [];
    demos.on('changed', (e) => removed.push(...(e.removed ?? [])));
    demos.applyState(NODE_ID, false, [{ token: token(99_999), demo: 'kiosk', pid: 1, alive: true }], 0);
    for (let i = 0; i < 5000; i++) {
      demos.applyState(NODE_ID, false, [{ token: token(i), demo: `burst-${i % 7}`, pid: 10 + i, alive: true }], 2 * i + 1);
      demos.applyState(NODE_ID, false, [{ token: token(i), demo: `burst-${i % 7}`, pid: 10 + i, alive: false }], 2 * i + 2);
    }
    const kept = demos.list(NODE_ID);
    expect(kept.filter((d) => d.alive).map((d) => d.demo)).toEqual(['kiosk']);
    // The newest ended runs of each of the 7 demos.
    const newest = Array.from({ length: 7 * MAX_DEAD_RUNS_PER_DEMO }, (_, k) => token(4999 - k));
    expect(kept.filter((d) => !d.alive).map((d) => d.token).sort()).toEqual(newest.sort());
    await deferred.settled();
    expect((await new DemoRegistry(new DemosRepository(sql)).load()).list(NODE_ID)).toHaveLength(7 * MAX_DEAD_RUNS_PER_DEMO + 1);
    expect(removed).toHaveLength(5000 - 7 * MAX_DEAD_RUNS_PER_DEMO);
  });

  it('keeps one ended run of each of many demos, up to the node limit', () => {
    for (let i = 0; i < MAX_DEAD_RUNS_PER_NODE + 50; i++) {
      demos.applyState(NODE_ID, false, [{ token: token(i), demo: `exhibit-${i}`, pid: 10 + i, alive: false }], i + 1);
    }
    expect(demos.list(NODE_ID)).toHaveLength(MAX_DEAD_RUNS_PER_NODE);
    expect(demos.runsOf(NODE_ID, 'exhibit-0')).toEqual([]);
    expect(demos.runsOf(NODE_ID, `exhibit-${MAX_DEAD_RUNS_PER_NODE + 49}`)).toHaveLength(1);
  });
});
