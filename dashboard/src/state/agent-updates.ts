import { isAgentBehind, type AgentUpdateView, type NodeView } from '@dvic/protocol/shared';

type UpdateNode = AgentUpdateView['nodes'][number];

/** The steps a node goes through, in order; the last one is where it ends when all goes well. */
export const UPDATE_STEPS = ['download', 'verify', 'selftest', 'switch', 'restart', 'healthy'] as const;

export type StepMark = 'done' | 'current' | 'failed' | 'todo';

/**
 * Each step of a node's update as it should show: done (passed), current (it is there now),
 * failed (where it stopped), todo. A rollback fails the restart step (the new version ran and
 * was restored); a refusal fails the step after the last one reached.
 */
export function stepMarks(node: Pick<UpdateNode, 'state' | 'step'>, trail: readonly string[]): Array<{ step: string; mark: StepMark }> {
  const failedAt = node.step === 'rolled_back' ? UPDATE_STEPS.indexOf('restart')
    : node.state === 'failed' || node.step === 'failed' ? Math.min(UPDATE_STEPS.length - 1, lastReached(trail) + 1) : -1;
  const reached = failedAt >= 0 ? failedAt : node.step === null ? -1 : lastReached([...trail, node.step]);
  return UPDATE_STEPS.map((step, i) => ({
    step,
    mark: i === failedAt ? 'failed' : i < reached || (i === reached && node.state === 'done') ? 'done' : i === reached ? 'current' : 'todo',
  }));
}

const lastReached = (steps: readonly string[]): number => Math.max(-1, ...steps.map((s) => (UPDATE_STEPS as readonly string[]).indexOf(s)));

/**
 * The steps a node was seen at, across polls: a poll shows only the last step, and one poll may
 * miss some. Steps before the one reached count as passed.
 */
export function mergeTrails(trails: ReadonlyMap<string, readonly string[]>, update: AgentUpdateView): Map<string, string[]> {
  const next = new Map<string, string[]>();
  for (const n of update.nodes) {
    const seen = [...(trails.get(n.node_id) ?? [])];
    if (n.step && !seen.includes(n.step)) seen.push(n.step);
    next.set(n.node_id, seen);
  }
  return next;
}

/** Nodes an update can be asked for: not revoked, behind first, then by name. */
export function updatableNodes(nodes: readonly NodeView[], shipped: string | null): Array<NodeView & { behind: boolean }> {
  return nodes.filter((n) => n.status !== 'revoked')
    .map((n) => ({ ...n, behind: isAgentBehind(n.agent_version, shipped) }))
    .sort((a, b) => Number(b.behind) - Number(a.behind) || a.name.localeCompare(b.name));
}

export const isUpdateOver = (update: Pick<AgentUpdateView, 'state'>): boolean => ['done', 'failed', 'cancelled'].includes(update.state);
