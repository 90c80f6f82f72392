import crypto from 'node:crypto';
import path from 'node:path';
import { ErrorCode, type ArtifactView, type DeploymentView } from '@dvic/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { ApiError, notFound } from '../errors.js';
import type { NodeRegistry } from '../live/node-registry.js';
import type { DeploymentsRepository } from '../repositories/deployments-repository.js';
import type { ArtifactStore } from './artifact-store.js';
import type { WriteScheduler } from './deferred-writes.js';
import { LatestWrites } from './latest-writes.js';
import type { Targets } from './command-service.js';
import { MAX_CHUNK_BYTES } from './artifact-transfers.js';
import type { NodeDeploys, NodeOrder, StatusData } from './node-deploys.js';
import { Rollout, type RolloutNodeProgress, type RolloutState } from './rollout.js';

type DeployStep = NonNullable<DeploymentView['nodes'][number]['step']>;

/** What a client asks for (POST /api/v1/deployments). */
export interface DeploymentRequest {
  artifact: string;
  targets: Targets;
  path: string;
  extract?: boolean;
  mode?: string | null;
  owner?: string | null;
  pre_command?: string | null;
  post_command?: string | null;
  max_parallel?: number;
}

interface Running {
  view: DeploymentView;
  rollout: Rollout;
}

/** The destination as the server can judge it: an absolute, normalized path (each agent checks its allowed roots). */
function checkPath(target: string): void {
  if (!target.startsWith('/') || target === '/' || path.posix.normalize(target) !== target || target.endsWith('/') || target.includes('\0')) {
    throw new ApiError(400, ErrorCode.badRequest, `path must be an absolute, normalized path such as /opt/dvic-demos/<name> (no "..", no trailing /), not ${JSON.stringify(target.slice(0, 200))}`);
  }
}

/**
 * Artifact deploys: resolves the targets, runs one node job per target through a Rollout (at
 * most N at a time, pause, cancel), keeps each node's step, bytes and result, persists the view
 * at every step, and rolls a deployment back on the nodes it reached.
 */
export class DeploymentService {
  private readonly running = new Map<string, Running>();
  /** Progress writes, in order per deployment (the view as it is when each runs). */
  private readonly progress: LatestWrites;

  constructor(
    private readonly repository: DeploymentsRepository,
    private readonly store: ArtifactStore,
    private readonly nodes: NodeDeploys,
    private readonly registry: NodeRegistry,
    private readonly resolveTargets: (targets: Targets) => string[],
    private readonly defaultParallel: number,
    private readonly log: FastifyBaseLogger,
    deferred: WriteScheduler,
  ) {
    this.progress = new LatestWrites(deferred);
  }

  /**
   * Ends the deployments a server restart interrupted (they lived in the old process): once, at
   * start; owner: only that replica's (the leader: a gone one's).
   */
  async endInterrupted(owner?: string): Promise<number> {
    const views = await this.repository.unfinished(owner);
    for (const view of views) {
      view.state = 'failed';
      for (const node of view.nodes) if (node.result === 'pending' || node.result === 'running') Object.assign(node, { result: 'failed', message: 'the server restarted during the deploy' });
      await this.repository.save(view);
    }
    return views.length;
  }

  /** The replicas that own deployments under way. */
  unfinishedOwners(): Promise<string[]> {
    return this.repository.unfinishedOwners();
  }

  /** Resolves once the progress written so far is stored (tests, shutdown). */
  settled(): Promise<void> {
    return this.progress.settled();
  }

  async create(request: DeploymentRequest, by: string): Promise<DeploymentView> {
    const artifact = await this.store.get(request.artifact);
    checkPath(request.path);
    const extract = request.extract ?? false;
    if (extract && artifact.format === 'file') {
      throw new ApiError(400, ErrorCode.badRequest, `artifact ${artifact.name} ${artifact.version} is not a .tar.gz or .zip: deploy it with "extract": false`);
    }
    const nodeIds = this.resolveTargets(request.targets);
    const view: DeploymentView = {
      id: crypto.randomUUID(), artifact, path: request.path, extract, mode: request.mode ?? null, owner: request.owner ?? null,
      pre_command: request.pre_command ?? null, post_command: request.post_command ?? null,
      max_parallel: request.max_parallel ?? this.defaultParallel, state: 'running', created_at: Date.now(), created_by: by,
      nodes: nodeIds.map((id) => ({
        node_id: id, node_name: this.registry.get(id)?.name ?? id, result: 'pending', step: null, bytes_done: 0, resumed_from: 0,
        message: null, started_at: null, finished_at: null,
      })),
    };
    await this.repository.save(view);
    this.repository.afterCommit(() => this.start(view, nodeIds, 'deploy'));
    return view;
  }

  async get(id: string): Promise<DeploymentView> {
    const view = this.running.get(id)?.view ?? await this.repository.get(id);
    if (!view) throw notFound(`deployment ${id}`);
    return view;
  }

  async list(limit: number): Promise<DeploymentView[]> {
    return (await this.repository.list(limit)).map((v) => this.running.get(v.id)?.view ?? v);
  }

  async cancel(id: string): Promise<DeploymentView> {
    const running = await this.runningOne(id);
    this.repository.afterCommit(() => running.rollout.cancel());
    return running.view;
  }

  async pause(id: string): Promise<DeploymentView> {
    const running = await this.runningOne(id);
    this.repository.afterCommit(() => running.rollout.pause());
    return running.view;
  }

  async resume(id: string): Promise<DeploymentView> {
    const running = await this.runningOne(id);
    this.repository.afterCommit(() => running.rollout.resume());
    return running.view;
  }

  /** Puts the previous version back on every node this deployment reached. */
  async rollback(id: string): Promise<DeploymentView> {
    const view = await this.get(id);
    if (this.running.has(id)) throw new ApiError(409, ErrorCode.conflict, `deployment ${id} is still ${view.state}: cancel it or wait for it to end`);
    const reached = view.nodes.filter((n) => n.result === 'done').map((n) => n.node_id);
    if (reached.length === 0) throw new ApiError(409, ErrorCode.conflict, 'no node of this deployment has it in place: nothing to roll back');
    view.state = 'rolling_back';
    for (const node of view.nodes) if (node.result === 'done') Object.assign(node, { step: null, message: null, started_at: null, finished_at: null });
    await this.repository.save(view);
    this.repository.afterCommit(() => this.start(view, reached, 'rollback'));
    return view;
  }

  /** Deletes an artifact no running deployment needs. */
  deleteArtifact(id: string): Promise<ArtifactView> {
    if ([...this.running.values()].some((r) => r.view.artifact.id === id)) {
      throw new ApiError(409, ErrorCode.conflict, `artifact ${id} is being deployed: wait for the deployment to end or cancel it`);
    }
    return this.store.delete(id, (fn) => this.repository.afterCommit(fn));
  }

  private async runningOne(id: string): Promise<Running> {
    const running = this.running.get(id);
    if (running) return running;
    const ended = await this.get(id);
    throw new ApiError(409, ErrorCode.conflict, `deployment ${ended.id} has ended (${ended.state})`);
  }

  private start(view: DeploymentView, nodeIds: string[], action: 'deploy' | 'rollback'): void {
    const rollout = new Rollout(nodeIds, (nodeId, report, signal) => this.nodes.run(nodeId, this.orderOf(view, action), report, signal,
      (status) => this.onStatus(view, nodeId, status)), { maxParallel: view.max_parallel, canary: false });
    this.running.set(view.id, { view, rollout });
    rollout.on('node', (progress) => this.onNode(view, progress, action));
    rollout.on('state', (state) => this.onState(view, state, action));
    void rollout.finished.then(() => {
      this.running.delete(view.id);
      this.save(view);
      this.log.info({ deploymentId: view.id, state: view.state }, `deployment ${action} ended`);
    });
    rollout.start();
  }

  private orderOf(view: DeploymentView, action: 'deploy' | 'rollback'): NodeOrder {
    const optional = Object.fromEntries(Object.entries({ mode: view.mode, owner: view.owner, pre_command: view.pre_command, post_command: view.post_command })
      .filter(([, v]) => v !== null));
    if (action === 'rollback') return { deployId: view.id, data: { action, path: view.path, ...optional } };
    const { artifact } = view;
    return {
      deployId: view.id,
      data: { action, path: view.path, sha256: artifact.sha256, size: artifact.size, format: artifact.format, extract: view.extract, chunk_bytes: MAX_CHUNK_BYTES, ...optional },
      artifact: { file: this.store.file(artifact.id), size: artifact.size },
    };
  }

  private onStatus(view: DeploymentView, nodeId: string, status: StatusData): void {
    const node = view.nodes.find((n) => n.node_id === nodeId);
    if (!node) return;
    if (status.bytes !== undefined) node.bytes_done = status.bytes;
    if (status.resumed_from !== undefined) node.resumed_from = status.resumed_from;
    const stepChanged = node.step !== status.state;
    node.step = status.state;
    if (status.message !== undefined) node.message = status.message;
    if (stepChanged) this.save(view);
  }

  private onNode(view: DeploymentView, progress: RolloutNodeProgress, action: 'deploy' | 'rollback'): void {
    const node = view.nodes.find((n) => n.node_id === progress.node_id);
    if (!node) return;
    node.result = progress.state === 'done' && action === 'rollback' ? 'rolled_back' : progress.state;
    // Steps reported through the rollout are the agent's (deploy.status) or "queued" while the node is away.
    if (progress.state === 'running' && progress.step !== null) node.step = progress.step as DeployStep;
    if (progress.detail !== null || progress.state !== 'running') node.message = progress.detail ?? node.message;
    node.started_at = progress.started_at;
    node.finished_at = progress.finished_at;
    if (progress.state === 'failed' || progress.state === 'cancelled') node.step = node.step === 'failed' || node.step === 'cancelled' ? node.step : progress.state;
    this.save(view);
  }

  private onState(view: DeploymentView, state: RolloutState, action: 'deploy' | 'rollback'): void {
    if (action === 'rollback') view.state = state === 'done' ? 'rolled_back' : state === 'running' ? 'rolling_back' : state;
    else view.state = state;
    this.save(view);
  }

  /** Stores the view as it is when the write runs, after the deployment's earlier writes (memory is what GET answers meanwhile). */
  private save(view: DeploymentView): void {
    this.progress.write(`deployment:${view.id}`, () => this.repository.save(view));
  }
}
