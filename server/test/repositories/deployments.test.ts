import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DeploymentView } from '@dvic/protocol';
import { DeploymentsRepository } from '../../src/repositories/deployments-repository.js';
import { repositoryOn } from '../support/repository-on.js';
import { storeKinds } from '../support/stores.js';

const deployment = (state: DeploymentView['state'], createdAt: number): DeploymentView => ({
  id: crypto.randomUUID(),
  artifact: { id: crypto.randomUUID(), name: 'kiosk', version: '1', size: 4, sha256: 'cd'.repeat(32), format: 'file', created_at: 1, created_by: 'admin' },
  path: '/opt/dvic-demos/kiosk', extract: false, mode: null, owner: null, pre_command: null, post_command: null, max_parallel: 5, state,
  created_at: createdAt, created_by: 'admin',
  nodes: [{ node_id: 'n1', node_name: 'pi-1', result: 'pending', step: null, bytes_done: 0, resumed_from: 0, message: null, started_at: null, finished_at: null }],
});

// The ViewTable behaviour (save, get, list, unfinished, afterCommit) through one of its tables; agent-updates.test.ts the other.
describe.each(storeKinds)('deployments on $name', (kind) => {
  const under = repositoryOn(kind, (sql) => new DeploymentsRepository(sql));

  it('keeps each deployment as its view; a save replaces it', async () => {
    const view = deployment('running', 1000);
    await under.repository.save(view);
    const done: DeploymentView = { ...view, state: 'done', nodes: [{ ...view.nodes[0]!, result: 'done', step: 'done', bytes_done: 4 }] };
    await under.repository.save(done);
    expect(await under.repository.get(view.id)).toEqual(done);
    expect(await under.repository.get(crypto.randomUUID())).toBeUndefined();
  });

  it('lists newest first up to the limit, and finds those a restart interrupted by their state', async () => {
    const states: DeploymentView['state'][] = ['running', 'paused', 'rolling_back', 'failed', 'cancelled', 'rolled_back'];
    const views = states.map((state, i) => deployment(state, 2000 + i));
    for (const v of views) await under.repository.save(v);
    expect((await under.repository.list(3)).map((v) => v.state)).toEqual(['rolled_back', 'cancelled', 'failed']);
    expect((await under.repository.unfinished()).map((v) => v.id).sort()).toEqual(views.slice(0, 3).map((v) => v.id).sort());
  });

  it("keeps the replica that made a deployment as its owner, through another's save: found by owner", async () => {
    const byA = deployment('running', 4000);
    const byB = deployment('paused', 4001);
    await new DeploymentsRepository(under.store.sql, 'replica-a').save(byA);
    await new DeploymentsRepository(under.store.sql, 'replica-b').save(byB);
    // The leader (another replica) ends A's: the row stays A's.
    await new DeploymentsRepository(under.store.sql, 'replica-c').save({ ...byA, state: 'paused' });
    expect((await under.repository.unfinished('replica-a')).map((v) => [v.id, v.state])).toEqual([[byA.id, 'paused']]);
    // '' owns what the tests before saved (a repository without an owner, as rows made before migration 0017).
    expect((await under.repository.unfinishedOwners()).filter(Boolean).sort()).toEqual(['replica-a', 'replica-b']);
  });

  it('runs what waits for the commit once it committed, and never after a rollback', async () => {
    const ran: string[] = [];
    await under.store.sql.transaction(async () => {
      await under.repository.save(deployment('running', 3000));
      under.repository.afterCommit(() => ran.push('committed'));
      expect(ran).toEqual([]);
    });
    await expect(under.store.sql.transaction(async () => {
      under.repository.afterCommit(() => ran.push('rolled back'));
      throw new Error('refused');
    })).rejects.toThrow('refused');
    expect(ran).toEqual(['committed']);
  });
});
