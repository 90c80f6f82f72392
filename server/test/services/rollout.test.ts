import { describe, expect, it } from 'vitest';
import { Rollout, type RolloutJobResult, type RolloutNodeProgress, type RolloutReport } from '../../src/services/rollout.js';

/** A job each node runs until the test ends it: lets a test see exactly which nodes run at once. */
class Jobs {
  readonly started: string[] = [];
  private readonly endings = new Map<string, (result: RolloutJobResult | Error) => void>();
  readonly reports = new Map<string, RolloutReport>();
  readonly signals = new Map<string, AbortSignal>();

  readonly job = (nodeId: string, report: RolloutReport, signal: AbortSignal): Promise<RolloutJobResult> => {
    this.started.push(nodeId);
    this.reports.set(nodeId, report);
    this.signals.set(nodeId, signal);
    return new Promise((resolve, reject) => {
      this.endings.set(nodeId, (result) => (result instanceof Error ? reject(result) : resolve(result)));
      signal.addEventListener('abort', () => resolve('failed'));
    });
  };

  running(): string[] {
    return [...this.endings.keys()];
  }

  async end(nodeId: string, result: RolloutJobResult | Error): Promise<void> {
    const ending = this.endings.get(nodeId);
    if (!ending) throw new Error(`${nodeId} is not running`);
    this.endings.delete(nodeId);
    ending(result);
    await new Promise((r) => setImmediate(r));
  }
}

const states = (rollout: Rollout) => Object.fromEntries(rollout.progress().nodes.map((n) => [n.node_id, n.state]));

describe('rollout runner', () => {
  it('runs at most maxParallel nodes at a time and ends done when every node is done', async () => {
    const jobs = new Jobs();
    const rollout = new Rollout(['a', 'b', 'c', 'd', 'e'], jobs.job, { maxParallel: 2, canary: false }).start();
    expect(jobs.running()).toEqual(['a', 'b']);
    await jobs.end('a', 'done');
    expect(jobs.running()).toEqual(['b', 'c']);
    await jobs.end('b', 'done');
    await jobs.end('c', 'done');
    expect(jobs.running()).toEqual(['d', 'e']);
    await jobs.end('d', 'done');
    await jobs.end('e', 'done');
    const final = await rollout.finished;
    expect(final.state).toBe('done');
    expect(final.nodes.every((n) => n.state === 'done' && n.finished_at !== null)).toBe(true);
  });

  it('runs the canary alone, then the rest once it is done', async () => {
    const jobs = new Jobs();
    const rollout = new Rollout(['canary', 'b', 'c'], jobs.job, { maxParallel: 5, canary: true }).start();
    expect(jobs.running()).toEqual(['canary']);
    expect(rollout.progress().nodes.map((n) => n.canary)).toEqual([true, false, false]);
    await jobs.end('canary', 'done');
    expect(jobs.running()).toEqual(['b', 'c']);
    await jobs.end('b', 'done');
    await jobs.end('c', 'failed');
    expect((await rollout.finished).state).toBe('failed');
    expect(states(rollout)).toEqual({ canary: 'done', b: 'done', c: 'failed' });
  });

  it('skips every other node when the canary fails, and says why', async () => {
    const jobs = new Jobs();
    const rollout = new Rollout(['canary', 'b', 'c'], jobs.job, { maxParallel: 2, canary: true }).start();
    await jobs.end('canary', new Error('the new agent never said hello'));
    const final = await rollout.finished;
    expect(jobs.started).toEqual(['canary']);
    expect(final.state).toBe('failed');
    expect(final.nodes.map((n) => [n.state, n.detail])).toEqual([
      ['failed', 'the new agent never said hello'], ['skipped', 'the canary node failed'], ['skipped', 'the canary node failed'],
    ]);
  });

  it('reports each step of a node as an event, in order, with its detail', async () => {
    const jobs = new Jobs();
    const rollout = new Rollout(['a'], jobs.job, { maxParallel: 1, canary: false });
    const seen: Array<Pick<RolloutNodeProgress, 'state' | 'step' | 'detail'>> = [];
    rollout.on('node', ({ state, step, detail }) => seen.push({ state, step, detail }));
    rollout.start();
    jobs.reports.get('a')!('download', '10%');
    jobs.reports.get('a')!('verify');
    await jobs.end('a', 'done');
    await rollout.finished;
    expect(seen).toEqual([
      { state: 'running', step: null, detail: null },
      { state: 'running', step: 'download', detail: '10%' },
      { state: 'running', step: 'verify', detail: null },
      { state: 'done', step: 'verify', detail: null },
    ]);
    // A report after the node ended changes nothing.
    jobs.reports.get('a')!('late');
    expect(rollout.progress().nodes[0]!.step).toBe('verify');
  });

  it('counts a job that throws synchronously as failed, not as a crash', async () => {
    const rollout = new Rollout(['a', 'b'], () => { throw new Error('boom'); }, { maxParallel: 1, canary: false }).start();
    const final = await rollout.finished;
    expect(final.nodes.map((n) => [n.state, n.detail])).toEqual([['failed', 'boom'], ['failed', 'boom']]);
    expect(final.state).toBe('failed');
  });

  it('pauses (running nodes finish, no new one starts) and resumes', async () => {
    const jobs = new Jobs();
    const rollout = new Rollout(['a', 'b', 'c'], jobs.job, { maxParallel: 1, canary: false });
    const changes: string[] = [];
    rollout.on('state', (s) => changes.push(s));
    rollout.start();
    expect(rollout.pause()).toBe(true);
    await jobs.end('a', 'done');
    expect(jobs.running()).toEqual([]);
    expect(rollout.state).toBe('paused');
    expect(states(rollout)).toEqual({ a: 'done', b: 'pending', c: 'pending' });
    expect(rollout.resume()).toBe(true);
    expect(jobs.running()).toEqual(['b']);
    await jobs.end('b', 'done');
    await jobs.end('c', 'done');
    expect((await rollout.finished).state).toBe('done');
    expect(changes).toEqual(['paused', 'running', 'done']);
  });

  it('cancels: running jobs see the abort, pending nodes never start, and it cannot be resumed', async () => {
    const jobs = new Jobs();
    const rollout = new Rollout(['a', 'b', 'c'], jobs.job, { maxParallel: 2, canary: false }).start();
    expect(rollout.cancel()).toBe(true);
    expect(jobs.signals.get('a')!.aborted).toBe(true);
    const final = await rollout.finished;
    expect(final.state).toBe('cancelled');
    expect(jobs.started).toEqual(['a', 'b']);
    expect(states(rollout)).toEqual({ a: 'cancelled', b: 'cancelled', c: 'cancelled' });
    expect(rollout.resume()).toBe(false);
    expect(rollout.pause()).toBe(false);
    expect(rollout.cancel()).toBe(false);
  });

  it('refuses an empty or duplicated target list', () => {
    expect(() => new Rollout([], async () => 'done', { maxParallel: 1, canary: false })).toThrow(/at least one node/);
    expect(() => new Rollout(['a', 'a'], async () => 'done', { maxParallel: 1, canary: false })).toThrow(/each node once/);
  });
});
