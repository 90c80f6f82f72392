import type { DeploymentView } from '@dvic/protocol/shared';

type DeployNode = DeploymentView['nodes'][number];

/** Deployment states after which nothing changes any more (no need to poll). */
export const isDeploymentOver = (d: DeploymentView): boolean => !['running', 'paused', 'rolling_back'].includes(d.state);

/** A node's share of the artifact on it, 0–100: the download, then 100 once it holds all of it. */
export function nodePercent(node: DeployNode, size: number): number {
  if (node.result === 'done' || node.result === 'rolled_back') return 100;
  if (size <= 0) return node.step && node.step !== 'queued' ? 100 : 0;
  return Math.min(100, Math.floor((100 * node.bytes_done) / size));
}

/** How many nodes are done, failed, and still to go, for a one-line summary. */
export function deploymentSummary(d: DeploymentView): string {
  const count = (results: DeployNode['result'][]) => d.nodes.filter((n) => results.includes(n.result)).length;
  const done = count(['done', 'rolled_back']);
  const failed = count(['failed', 'cancelled', 'skipped']);
  return `${done}/${d.nodes.length} done${failed ? `, ${failed} failed` : ''}`;
}
