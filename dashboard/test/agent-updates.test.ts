import { describe, expect, it } from 'vitest';
import type { AgentUpdateView, NodeView } from '@dvic/protocol/shared';
import { mergeTrails, stepMarks, updatableNodes } from '../src/state/agent-updates.js';

const marks = (state: AgentUpdateView['nodes'][number]['state'], step: AgentUpdateView['nodes'][number]['step'], trail: string[] = []) =>
  stepMarks({ state, step }, trail).map((s) => `${s.step}:${s.mark}`).join(' ');

describe('agent update steps', () => {
  it('shows the steps passed, the one a node is at, and the rest to come', () => {
    expect(marks('pending', null)).toBe('download:todo verify:todo selftest:todo switch:todo restart:todo healthy:todo');
    expect(marks('running', 'selftest')).toBe('download:done verify:done selftest:current switch:todo restart:todo healthy:todo');
    expect(marks('done', 'healthy')).toBe('download:done verify:done selftest:done switch:done restart:done healthy:done');
  });

  it('marks where a node failed: the restart for a rollback, the next step for a refusal', () => {
    expect(marks('failed', 'rolled_back', ['download', 'verify', 'selftest', 'switch', 'restart']))
      .toBe('download:done verify:done selftest:done switch:done restart:failed healthy:todo');
    expect(marks('failed', 'failed', ['download', 'verify'])).toBe('download:done verify:done selftest:failed switch:todo restart:todo healthy:todo');
  });

  it('keeps every step seen across polls, once', () => {
    const view = (step: string) => ({ nodes: [{ node_id: 'n1', step }] }) as unknown as AgentUpdateView;
    const once = mergeTrails(new Map(), view('download'));
    expect(mergeTrails(mergeTrails(once, view('download')), view('verify')).get('n1')).toEqual(['download', 'verify']);
  });
});

describe('nodes to update', () => {
  it('lists the nodes behind the shipped agent first and leaves revoked ones out', () => {
    const node = (name: string, agent_version: string | null, status = 'online') => ({ name, agent_version, status }) as NodeView;
    const list = updatableNodes([node('b', '0.2.0'), node('a', '0.2.0'), node('c', '0.1.0'), node('gone', '0.1.0', 'revoked')], '0.2.0');
    expect(list.map((n) => [n.name, n.behind])).toEqual([['c', true], ['a', false], ['b', false]]);
  });
});
