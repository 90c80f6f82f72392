import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ErrorCode, type AgentUpdateView, type UpdateFetchMessage, type UpdateStatusMessage } from '@dvic/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { ApiError } from '../errors.js';
import type { NodeLink } from '../hub/node-link.js';
import type { NodeRegistry } from '../live/node-registry.js';
import type { AgentUpdatesRepository } from '../repositories/agent-updates-repository.js';
import { writeNow, type WriteScheduler } from './deferred-writes.js';
import { LatestWrites } from './latest-writes.js';
import type { AgentRelease } from './agent-release.js';
import type { Requester, Targets } from './command-service.js';
import { isFinalRolloutState, Rollout, type RolloutJob, type RolloutJobResult, type RolloutNodeProgress, type RolloutReport } from './rollout.js';
import type { UpdateKey } from './update-key.js';

export interface AgentUpdateRequest {
  targets: Targets;
  canary?: boolean;
  force?: boolean;
  max_parallel?: number;
}

export interface AgentUpdateOptions {
  /** From update.request to the node's healthy (or rolled_back) report; past it the node failed. */
  nodeTimeoutMs: number;
  defaultMaxParallel: number;
}

export interface AgentUpdateEvents {
  updated: [AgentUpdateView];
}

type NodeStep = NonNullable<AgentUpdateView['nodes'][number]['step']>;

/** One node's update in flight: what its job waits for. */
interface NodeWatch {
  report: RolloutReport;
  finish(result: RolloutJobResult): void;
  fail(why: string): void;
  step: string;
  timer: NodeJS.Timeout;
}

interface ActiveUpdate {
  id: string;
  release: AgentRelease;
  signature: string;
  force: boolean;
  canary: boolean;
  maxParallel: number;
  user: string;
  createdAt: number;
  finishedAt: number | null;
  fromVersions: Map<string, string | null>;
  rollout: Rollout;
}

type NodeResult = AgentUpdateView['nodes'][number]['result'];

/** An update the server restart interrupted: running nodes failed (what they run now is their agent version), pending ones cancelled. */
function interrupted(update: AgentUpdateView): AgentUpdateView {
  const now = Date.now();
  return {
    ...update, state: 'failed', finished_at: now,
    nodes: update.nodes.map((n) => {
      if (n.state === 'running') return { ...n, state: 'failed', result: 'failed', detail: RESTARTED, finished_at: now };
      if (n.state === 'pending') return { ...n, state: 'cancelled', result: 'cancelled', detail: 'the server restarted before it started', finished_at: now };
      return n;
    }),
  };
}

/** A node's outcome in one word, once it ended. */
function resultOf(n: RolloutNodeProgress): NodeResult {
  if (n.state === 'done') return 'updated';
  if (n.state === 'failed') return n.step === 'rolled_back' ? 'rolled_back' : 'failed';
  return n.state === 'skipped' || n.state === 'cancelled' ? n.state : null;
}

/** Ended updates kept in memory too (GET reads the database for older ones). */
const KEEP_FINISHED = 200;
const LIST_LIMIT = 200;
const RESTARTED = "the server restarted during the update: see the node's agent version";
const FINAL_STEPS: Partial<Record<NodeStep, RolloutJobResult>> = { healthy: 'done', rolled_back: 'failed', failed: 'failed' };
/** Steps that need the link: a node that drops it there cannot go on (later, it goes on by itself and reports). */
const LINK_STEPS: Record<string, string> = { sent: 'before it reported any step', download: 'during the download' };

/**
 * Agent self-update rollouts: sends update.request to each target node through the generic
 * rollout runner (canary first, at most N at a time, pause/cancel), serves the file in chunks
 * over each agent's own link (update.fetch), and follows update.status to each node's result.
 */
export class AgentUpdateService extends EventEmitter<AgentUpdateEvents> {
  private readonly updates = new Map<string, ActiveUpdate>();
  private readonly watches = new Map<string, NodeWatch>();
  /** Progress writes, in order per update (the view as it is when each runs). */
  private readonly progress: LatestWrites;
  private closed = false;

  constructor(
    private readonly repository: AgentUpdatesRepository,
    private readonly hub: NodeLink,
    private readonly registry: NodeRegistry,
    private readonly resolveTargets: (targets: Targets) => string[],
    private readonly release: () => AgentRelease,
    private readonly key: UpdateKey,
    private readonly options: AgentUpdateOptions,
    private readonly log: FastifyBaseLogger,
    deferred: WriteScheduler = writeNow,
  ) {
    super();
    this.progress = new LatestWrites(deferred);
    hub.on('update.status', (nodeId, message) => this.onStatus(nodeId, message));
    hub.on('update.fetch', (nodeId, message) => this.onFetch(nodeId, message));
    hub.on('disconnected', (nodeId) => this.onDisconnected(nodeId));
  }

  /** Ends the updates a server restart interrupted: once, at start; owner: only that replica's (the leader: a gone one's). */
  async endInterrupted(owner?: string): Promise<number> {
    const updates = await this.repository.unfinished(owner);
    for (const update of updates) await this.repository.save(interrupted(update));
    return updates.length;
  }

  /** The replicas that own updates under way. */
  unfinishedOwners(): Promise<string[]> {
    return this.repository.unfinishedOwners();
  }

  /** Resolves once the progress written so far is stored (tests, shutdown). */
  settled(): Promise<void> {
    return this.progress.settled();
  }

  async start(request: AgentUpdateRequest, by: Requester): Promise<AgentUpdateView> {
    const nodeIds = this.resolveTargets(request.targets);
    const release = this.release();
    const canary = request.canary ?? true;
    const maxParallel = request.max_parallel ?? this.options.defaultMaxParallel;
    // The job runs only after start(), once `update` exists.
    const rollout = new Rollout(nodeIds, (...args) => this.job(update)(...args), { maxParallel, canary });
    const update: ActiveUpdate = {
      id: crypto.randomUUID(), release, signature: this.key.sign(release.bytes), force: request.force ?? false, canary, maxParallel,
      user: by.username, createdAt: Date.now(), finishedAt: null, rollout,
      fromVersions: new Map(nodeIds.map((id) => [id, this.registry.get(id)?.agentVersion ?? null])),
    };
    await this.repository.save(this.view(update));
    this.updates.set(update.id, update);
    this.forgetOld();
    update.rollout.on('node', () => this.changed(update));
    update.rollout.on('state', (state) => {
      if (isFinalRolloutState(state)) {
        update.finishedAt = Date.now();
        update.release = { ...update.release, bytes: Buffer.alloc(0) }; // no node fetches it any more
      }
      this.changed(update);
    });
    this.log.info({ updateId: update.id, version: release.version, nodes: nodeIds.length, by: by.username }, 'agent update started');
    // Nothing is sent before the request's transaction (and its audit entry) commits.
    this.repository.afterCommit(() => update.rollout.start());
    return this.view(update);
  }

  async get(id: string): Promise<AgentUpdateView | undefined> {
    const update = this.updates.get(id);
    return update ? this.view(update) : this.repository.get(id);
  }

  /** Newest first: those in memory as they are now, older ones as stored. */
  async list(): Promise<AgentUpdateView[]> {
    const stored = (await this.repository.list(LIST_LIMIT)).map((u) => { const update = this.updates.get(u.id); return update ? this.view(update) : u; });
    const unstored = [...this.updates.values()].filter((u) => !stored.some((s) => s.id === u.id)).map((u) => this.view(u));
    return [...unstored, ...stored].sort((a, b) => b.created_at - a.created_at).slice(0, LIST_LIMIT);
  }

  /** The server stops: nothing more is recorded; running updates are ended as interrupted at the next start. */
  stop(): void {
    this.closed = true;
    for (const watch of this.watches.values()) clearTimeout(watch.timer);
  }

  /** Stores the update as it is when the write runs (now, or once the disk has room), and tells listeners. */
  private changed(update: ActiveUpdate): void {
    if (this.closed) return;
    this.progress.write(`agent-update:${update.id}`, () => this.repository.save(this.view(update)));
    this.emit('updated', this.view(update));
  }

  /** pause, resume or cancel; the answer is the update as it then is. */
  control(id: string, action: 'pause' | 'resume' | 'cancel'): AgentUpdateView {
    const update = this.updates.get(id);
    if (!update) throw new ApiError(404, ErrorCode.notFound, `agent update ${id} not found`);
    if (!update.rollout[action]()) throw new ApiError(409, ErrorCode.conflict, `the update is ${update.rollout.state}: cannot ${action} it`);
    return this.view(update);
  }

  private job(update: ActiveUpdate): RolloutJob {
    return (nodeId, report, signal) => new Promise<RolloutJobResult>((resolve) => {
      const key = `${update.id}:${nodeId}`;
      const finish = (result: RolloutJobResult) => {
        clearTimeout(timer);
        this.watches.delete(key);
        resolve(result);
      };
      const fail = (why: string) => {
        report('failed', why);
        finish('failed');
      };
      const timer = setTimeout(() => fail(`no result from the node within ${Math.round(this.options.nodeTimeoutMs / 1000)} s`), this.options.nodeTimeoutMs);
      timer.unref();
      signal.addEventListener('abort', () => fail('the update was cancelled'), { once: true });
      const problem = this.refusal(update, nodeId);
      if (problem) return problem === 'current' ? (report('healthy', `already runs ${update.release.version}`), finish('done')) : fail(problem);
      const watch: NodeWatch = { report: (step, detail) => { watch.step = step; report(step, detail); }, finish, fail, step: 'sent', timer };
      this.watches.set(key, watch);
      const { release } = update;
      const sent = this.hub.sendTo(nodeId, {
        type: 'update.request',
        data: { update_id: update.id, version: release.version, sha256: release.sha256, size: release.size, signature: update.signature, ...(update.force ? { force: true } : {}) },
      });
      if (!sent) return fail('the node went offline');
      watch.report('sent', `version ${release.version}, ${release.size} bytes`);
    });
  }

  /** Why this node cannot be updated now ('current' when it already runs the version), or null. */
  private refusal(update: ActiveUpdate, nodeId: string): string | null {
    const node = this.registry.get(nodeId);
    if (!this.hub.isConnected(nodeId)) return `node ${node?.name ?? nodeId} is offline`;
    if (!this.hub.capabilities(nodeId)?.includes('update')) {
      return `the agent on this node (${node?.agentVersion ?? 'unknown version'}) cannot update itself: reinstall it once`;
    }
    if (node?.agentVersion === update.release.version && !update.force) return 'current';
    return null;
  }

  private onStatus(nodeId: string, { data }: UpdateStatusMessage): void {
    const watch = this.watches.get(`${data.update_id}:${nodeId}`);
    if (!watch) return;
    const progress = data.progress === undefined ? '' : `${Math.round(data.progress * 100)}%`;
    watch.report(data.step, data.message ?? (progress || undefined));
    const result = FINAL_STEPS[data.step];
    if (result) watch.finish(result);
  }

  private onDisconnected(nodeId: string): void {
    if (this.hub.stopping) return; // the update is recorded as interrupted at the next start
    for (const [key, watch] of this.watches) {
      if (key.endsWith(`:${nodeId}`) && LINK_STEPS[watch.step]) watch.fail(`the node disconnected ${LINK_STEPS[watch.step]}`);
    }
  }

  /** A piece of the update's file, only to a node that is updating with it. */
  private onFetch(nodeId: string, { data }: UpdateFetchMessage): void {
    const update = this.updates.get(data.update_id);
    const reply = (extra: { data: string } | { error: string }) =>
      this.hub.sendTo(nodeId, { type: 'update.chunk', data: { update_id: data.update_id, version: data.version, offset: data.offset, ...extra } });
    if (!update || !this.watches.has(`${data.update_id}:${nodeId}`) || data.version !== update.release.version) {
      return void reply({ error: 'no update in progress for this node and version' });
    }
    if (data.offset >= update.release.size) return void reply({ error: `offset ${data.offset} is past the end (${update.release.size} bytes)` });
    reply({ data: update.release.bytes.subarray(data.offset, data.offset + data.length).toString('base64') });
  }

  private view(update: ActiveUpdate): AgentUpdateView {
    const progress = update.rollout.progress();
    return {
      id: update.id, version: update.release.version, sha256: update.release.sha256, canary: update.canary, force: update.force,
      max_parallel: update.maxParallel, state: progress.state, user: update.user, created_at: update.createdAt,
      finished_at: update.finishedAt, nodes: progress.nodes.map((n) => this.nodeView(update, n)),
    };
  }

  private nodeView(update: ActiveUpdate, n: RolloutNodeProgress): AgentUpdateView['nodes'][number] {
    return {
      node_id: n.node_id, name: this.registry.get(n.node_id)?.name ?? n.node_id, from_version: update.fromVersions.get(n.node_id) ?? null,
      state: n.state, step: n.step as NodeStep | null, result: resultOf(n), detail: n.detail, canary: n.canary, started_at: n.started_at, finished_at: n.finished_at,
    };
  }

  private forgetOld(): void {
    const finished = [...this.updates.values()].filter((u) => isFinalRolloutState(u.rollout.state));
    for (const old of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.updates.delete(old.id);
  }
}
