import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AgentUpdateView } from '@dvic/protocol';
import { AgentUpdatesRepository } from '../../src/repositories/agent-updates-repository.js';
import { repositoryOn } from '../support/repository-on.js';
import { storeKinds } from '../support/stores.js';

const update = (state: AgentUpdateView['state'], createdAt: number): AgentUpdateView => ({
  id: crypto.randomUUID(), version: '1.2.0', sha256: 'ef'.repeat(32), canary: true, force: false, max_parallel: 5, state, user: 'admin',
  created_at: createdAt, finished_at: null,
  nodes: [{ node_id: 'n1', name: 'pi-1', from_version: '1.1.0', state: 'pending', step: null, result: null, detail: null, canary: true, started_at: null, finished_at: null }],
});

describe.each(storeKinds)('agent updates on $name', (kind) => {
  const under = repositoryOn(kind, (sql) => new AgentUpdatesRepository(sql));

  it('keeps each update as its view, newest first; those running or paused are the ones a restart interrupted', async () => {
    const states: AgentUpdateView['state'][] = ['running', 'paused', 'done', 'failed', 'cancelled'];
    const views = states.map((state, i) => update(state, 1000 + i));
    for (const v of views) await under.repository.save(v);
    const ended = { ...views[0]!, state: 'done' as const, finished_at: 5000 };
    await under.repository.save(ended);
    expect(await under.repository.get(ended.id)).toEqual(ended);
    expect((await under.repository.list(10)).map((v) => v.id)).toEqual([...views].reverse().map((v) => v.id));
    expect((await under.repository.list(2)).map((v) => v.state)).toEqual(['cancelled', 'failed']);
    expect((await under.repository.unfinished()).map((v) => v.id)).toEqual([views[1]!.id]);
  });
});
