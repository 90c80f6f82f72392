import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DemosRepository, type DemoView } from '../../src/repositories/demos-repository.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

const NODE = 'a0000000-0000-4000-8000-000000000001';
const run = (token: string, extra: Partial<DemoView> = {}): DemoView => ({
  node_id: NODE, token, demo: 'kiosk', pid: 42, user: 'pi', executable: '/usr/bin/python3', argv: ['python3', 'kiosk.py'],
  container: null, alive: true, since: 1000, started_at: 1000, exited_at: null, last_line_at: null, line_count: 0, error_count: 0,
  file_uid: 1000, trusted: true, ended: null, exit_code: null, ...extra,
});

describe.each(storeKinds)('demos repository on $name', (kind) => {
  let store: StoreUnderTest;
  let demos: DemosRepository;
  beforeEach(async () => {
    store = await kind.open();
    demos = new DemosRepository(store.sql);
  });
  afterEach(() => store.close());

  it('upserts a run: its state changes, its line counters stay', async () => {
    await demos.upsert(run('t1'));
    await demos.countLines({ nodeId: NODE, token: 't1', demo: 'kiosk', lines: 5, errors: 1, lastLineAt: 1500, now: 2000 });
    await demos.upsert(run('t1', { alive: false, since: 3000, exited_at: 3000, ended: 'exited', exit_code: 3, trusted: false, container: { id: 'c1', runtime: 'docker' } }));
    expect(await demos.all()).toEqual([run('t1', {
      alive: false, since: 3000, exited_at: 3000, ended: 'exited', exit_code: 3, trusted: false, container: { id: 'c1', runtime: 'docker' },
      line_count: 5, error_count: 1, last_line_at: 1500,
    })]);
  });

  it('counts lines of a run it has not seen yet, adds them up, and keeps the latest line time', async () => {
    await demos.countLines({ nodeId: NODE, token: 't2', demo: 'camera', lines: 3, errors: 0, lastLineAt: 1500, now: 1400 });
    await demos.countLines({ nodeId: NODE, token: 't2', demo: 'camera', lines: 2, errors: 2, lastLineAt: 1200, now: 1600 });
    expect(await demos.all()).toEqual([expect.objectContaining({
      token: 't2', demo: 'camera', alive: true, since: 1400, line_count: 5, error_count: 2, last_line_at: 1500,
    })]);
    await demos.countLines({ nodeId: NODE, token: 't2', demo: 'camera', lines: 1, errors: 0, lastLineAt: 1700, now: 1800 });
    expect((await demos.all())[0]!.last_line_at).toBe(1700);
  });

  it('forgets the runs named, and only those', async () => {
    for (const token of ['a', 'b', 'c']) await demos.upsert(run(token));
    await demos.forget(NODE, ['a', 'c']);
    await demos.forget(NODE, []);
    expect((await demos.all()).map((d) => d.token)).toEqual(['b']);
  });
});
