import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeploymentView } from '@dvic/protocol';
import { DeploymentsRepository } from '../../src/repositories/deployments-repository.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

const deployment = (state: DeploymentView['state'], createdAt: number): DeploymentView => ({
  id: crypto.randomUUID(),
  artifact: { id: crypto.randomUUID(), name: 'kiosk', version: '1', size: 4, sha256: 'cd'.repeat(32), format: 'file', created_at: 1, created_by: 'admin' },
  path: '/opt/dvic-demos/kiosk', extract: false, mode: null, owner: null, pre_command: null, post_command: null, max_parallel: 5, state,
  created_at: createdAt, created_by: 'admin',
  nodes: [{ node_id: 'n1', node_name: 'pi-1', result: 'pending', step: null, bytes_done: 0, resumed_from: 0, message: null, started_at: null, finished_at: null }],
});

// The ViewTable behaviour (save, get, list, unfinished, afterCommit) through one of its tables; agent-updates.test.ts the other.
describe.each(storeKinds)('deployments on $name', (kind) => {
  let store: StoreUnderTest;
  let deployments: DeploymentsRepository;
  beforeAll(async () => {
    store = await kind.open();
    deployments = new DeploymentsRepository(store.sql);
  });
  afterAll(() => store.close());

  it('keeps each deployment as its view; a save replaces it', async () => {
    const view = deployment('running', 1000);
    await deployments.save(view);
    const done: DeploymentView = { ...view, state: 'done', nodes: [{ ...view.nodes[0]!, result: 'done', step: 'done', bytes_done: 4 }] };
    await deployments.save(done);
    expect(await deployments.get(view.id)).toEqual(done);
    expect(await deployments.get(crypto.randomUUID())).toBeUndefined();
  });

  it('lists newest first up to the limit, and finds those a restart interrupted by their state', async () => {
    const states: DeploymentView['state'][] = ['running', 'paused', 'rolling_back', 'failed', 'cancelled', 'rolled_back'];
    const views = states.map((state, i) => deployment(state, 2000 + i));
    for (const v of views) await deployments.save(v);
    expect((await deployments.list(3)).map((v) => v.state)).toEqual(['rolled_back', 'cancelled', 'failed']);
    expect((await deployments.unfinished()).map((v) => v.id).sort()).toEqual(views.slice(0, 3).map((v) => v.id).sort());
  });

  it('runs what waits for the commit once it committed, and never after a rollback', async () => {
    const ran: string[] = [];
    await store.sql.transaction(async () => {
      await deployments.save(deployment('running', 3000));
      deployments.afterCommit(() => ran.push('committed'));
      expect(ran).toEqual([]);
    });
    await expect(store.sql.transaction(async () => {
      deployments.afterCommit(() => ran.push('rolled back'));
      throw new Error('refused');
    })).rejects.toThrow('refused');
    expect(ran).toEqual(['committed']);
  });
});
