import { describe, expect, it } from 'vitest';
import type { DeploymentView } from '@dvic/protocol/shared';
import { deploymentSummary, isDeploymentOver, nodePercent } from '../src/state/deploy-progress.js';

const node = (over: Partial<DeploymentView['nodes'][number]>): DeploymentView['nodes'][number] => ({
  node_id: 'n', node_name: 'pi', result: 'running', step: 'downloading', bytes_done: 0, resumed_from: 0, message: null, started_at: 1, finished_at: null, ...over,
});

describe('deploy progress', () => {
  it('shows the downloaded share, and 100 once a node is done or rolled back', () => {
    expect(nodePercent(node({ bytes_done: 25 }), 100)).toBe(25);
    expect(nodePercent(node({ bytes_done: 99_999 }), 100_000)).toBe(99);
    expect(nodePercent(node({ result: 'done', bytes_done: 0 }), 100)).toBe(100);
    expect(nodePercent(node({ result: 'pending', step: null }), 0)).toBe(0);
  });

  it('summarizes results and knows when polling can stop', () => {
    const d = { state: 'failed', nodes: [node({ result: 'done' }), node({ result: 'failed' }), node({ result: 'done' })] } as DeploymentView;
    expect(deploymentSummary(d)).toBe('2/3 done, 1 failed');
    expect(isDeploymentOver(d)).toBe(true);
    expect(isDeploymentOver({ ...d, state: 'rolling_back' })).toBe(false);
  });
});
