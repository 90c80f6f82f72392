import type { DeployStatusMessage } from '@dvic/protocol';
import type { NodeLink } from '../hub/node-link.js';
import type { ArtifactTransfers } from './artifact-transfers.js';
import type { RolloutJobResult, RolloutReport } from './rollout.js';

/** What one node is asked to do: deploy.request's data, and for a deploy the file its chunks come from. */
export interface NodeOrder {
  deployId: string;
  data: { action: 'deploy' | 'rollback'; path: string; [field: string]: unknown };
  artifact?: { file: string; size: number };
}

export type StatusData = DeployStatusMessage['data'];

interface Active {
  nodeId: string;
  order: NodeOrder;
  report: RolloutReport;
  onStatus: (status: StatusData) => void;
  settle: (result: RolloutJobResult | Error) => void;
  waitTimer?: NodeJS.Timeout;
}

/** After a cancel, how long the agent has to confirm before the node is given up. */
const CANCEL_GRACE_MS = 30_000;

/**
 * One deploy (or rollback) on one node, as a rollout job: sends deploy.request, follows the
 * agent's deploy.status until it ends, and rides out a dropped connection: when the node comes
 * back within the wait, the request goes again and its agent continues from the bytes it kept.
 */
export class NodeDeploys {
  private readonly active = new Map<string, Active>();

  constructor(private readonly hub: NodeLink, private readonly transfers: ArtifactTransfers, private readonly reconnectWaitMs: number) {
    hub.on('deploy.status', (nodeId, { data }) => this.active.get(key(nodeId, data.deploy_id))?.onStatus(data));
    hub.on('disconnected', (nodeId) => this.forNode(nodeId, (a) => this.waitForNode(a)));
    hub.on('connected', (nodeId) => this.forNode(nodeId, (a) => this.resend(a)));
  }

  run(nodeId: string, order: NodeOrder, report: RolloutReport, signal: AbortSignal, onStatus: (s: StatusData) => void): Promise<RolloutJobResult> {
    if (!this.hub.isConnected(nodeId)) return Promise.reject(new Error('the node is offline'));
    if (!this.hub.capabilities(nodeId)?.includes('deploy')) return Promise.reject(new Error('the agent on this node cannot deploy (update it)'));
    return new Promise<RolloutJobResult>((resolve, reject) => {
      const active: Active = {
        nodeId, order, report,
        onStatus: (status) => this.onStatus(active, status, onStatus),
        settle: (result) => {
          clearTimeout(active.waitTimer);
          this.active.delete(key(nodeId, order.deployId));
          this.transfers.end(nodeId, order.deployId);
          if (result instanceof Error) reject(result);
          else resolve(result);
        },
      };
      this.active.set(key(nodeId, order.deployId), active);
      signal.addEventListener('abort', () => this.cancel(active), { once: true });
      this.send(active);
    });
  }

  private onStatus(active: Active, status: StatusData, onStatus: (s: StatusData) => void): void {
    onStatus(status);
    if (status.state === 'done') return active.settle('done');
    if (status.state === 'failed' || status.state === 'cancelled') return active.settle(new Error(status.message ?? status.state));
    active.report(status.state, status.message);
  }

  private send(active: Active): void {
    const { order, nodeId } = active;
    const channel = order.artifact ? { channel: this.transfers.begin(nodeId, order.deployId, order.artifact.file, order.artifact.size) } : {};
    if (!this.hub.sendTo(nodeId, { type: 'deploy.request', data: { deploy_id: order.deployId, ...order.data, ...channel } })) {
      this.waitForNode(active);
    }
  }

  private waitForNode(active: Active): void {
    if (active.waitTimer) return;
    active.report('queued', `the node went offline: waiting up to ${Math.round(this.reconnectWaitMs / 1000)} s for it to come back`);
    active.waitTimer = setTimeout(() => active.settle(new Error('the node went offline and did not come back in time')), this.reconnectWaitMs);
    active.waitTimer.unref();
  }

  private resend(active: Active): void {
    if (!active.waitTimer) return;
    clearTimeout(active.waitTimer);
    active.waitTimer = undefined;
    this.send(active);
  }

  private cancel(active: Active): void {
    const data = { deploy_id: active.order.deployId, action: 'cancel', path: active.order.data.path };
    if (!this.hub.sendTo(active.nodeId, { type: 'deploy.request', data })) return active.settle(new Error('cancelled'));
    setTimeout(() => active.settle(new Error('cancelled (the agent did not confirm)')), CANCEL_GRACE_MS).unref();
  }

  private forNode(nodeId: string, fn: (active: Active) => void): void {
    for (const active of [...this.active.values()]) if (active.nodeId === nodeId) fn(active);
  }
}

const key = (nodeId: string, deployId: string) => `${nodeId}/${deployId}`;
