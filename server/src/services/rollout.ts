import { EventEmitter } from 'node:events';

/** What a node's job ends with. */
export type RolloutJobResult = 'done' | 'failed';

/** Tells the rollout which step a node is at ("download", "verify", ...) and, optionally, a detail. */
export type RolloutReport = (step: string, detail?: string) => void;

/**
 * The work on one node. It reports its steps, watches the signal (aborted when the rollout is
 * cancelled) and resolves with its result; a throw counts as "failed" with the error as detail.
 */
export type RolloutJob = (nodeId: string, report: RolloutReport, signal: AbortSignal) => Promise<RolloutJobResult>;

/** pending -> running -> done | failed; pending nodes become cancelled (cancel) or skipped (failed canary). */
export type RolloutNodeState = 'pending' | 'running' | 'done' | 'failed' | 'cancelled' | 'skipped';

/** running -> paused <-> running; then done (every node done), failed (any failed or skipped) or cancelled. */
export type RolloutState = 'running' | 'paused' | 'done' | 'failed' | 'cancelled';

export interface RolloutNodeProgress {
  node_id: string;
  state: RolloutNodeState;
  /** The last step the job reported (null before it starts). */
  step: string | null;
  detail: string | null;
  canary: boolean;
  started_at: number | null;
  finished_at: number | null;
}

export interface RolloutProgress {
  state: RolloutState;
  nodes: RolloutNodeProgress[];
}

export interface RolloutOptions {
  /** At most this many nodes run their job at once (at least 1). */
  maxParallel: number;
  /** The first node runs alone; the rest start only once it is done. If it fails, the rest are skipped. */
  canary: boolean;
}

export interface RolloutEvents {
  /** One node changed (state or step). */
  node: [RolloutNodeProgress];
  /** The rollout's own state changed. */
  state: [RolloutState];
}

const FINAL_NODE_STATES: readonly RolloutNodeState[] = ['done', 'failed', 'cancelled', 'skipped'];
export const isFinalRolloutState = (state: RolloutState): boolean => state === 'done' || state === 'failed' || state === 'cancelled';

/**
 * Runs one job per target node: at most maxParallel at a time, the canary alone first, with
 * pause (no new node starts; running ones finish), resume and cancel (running jobs are aborted,
 * pending nodes never start). Nothing here knows what the job does: self-update and artifact
 * deploy both use it. `finished` resolves with the final progress; it never rejects.
 */
export class Rollout extends EventEmitter<RolloutEvents> {
  private readonly nodes: RolloutNodeProgress[];
  private readonly abort = new AbortController();
  private rolloutState: RolloutState = 'running';
  private running = 0;
  private started = false;
  private resolveFinished!: (progress: RolloutProgress) => void;
  readonly finished = new Promise<RolloutProgress>((resolve) => { this.resolveFinished = resolve; });

  constructor(nodeIds: readonly string[], private readonly job: RolloutJob, private readonly options: RolloutOptions) {
    super();
    if (nodeIds.length === 0) throw new Error('a rollout needs at least one node');
    if (new Set(nodeIds).size !== nodeIds.length) throw new Error('a rollout names each node once');
    this.nodes = nodeIds.map((id, i) => ({
      node_id: id, state: 'pending', step: null, detail: null, canary: options.canary && i === 0, started_at: null, finished_at: null,
    }));
  }

  /** Starts the first nodes; call once, after listeners are attached. */
  start(): this {
    if (this.started) throw new Error('the rollout has already started');
    this.started = true;
    this.fill();
    return this;
  }

  get state(): RolloutState {
    return this.rolloutState;
  }

  progress(): RolloutProgress {
    return { state: this.rolloutState, nodes: this.nodes.map((n) => ({ ...n })) };
  }

  /** No new node starts until resume(); false when the rollout has already ended. */
  pause(): boolean {
    if (this.rolloutState !== 'running') return this.rolloutState === 'paused';
    this.setState('paused');
    return true;
  }

  resume(): boolean {
    if (this.rolloutState !== 'paused') return this.rolloutState === 'running';
    this.setState('running');
    this.fill();
    return true;
  }

  /** Aborts running jobs and cancels pending nodes; false when the rollout has already ended. */
  cancel(): boolean {
    if (isFinalRolloutState(this.rolloutState)) return false;
    for (const node of this.nodes) if (node.state === 'pending') this.endNode(node, 'cancelled', 'the rollout was cancelled');
    this.setState('cancelled');
    this.abort.abort(new Error('the rollout was cancelled'));
    this.settleIfIdle();
    return true;
  }

  /** Starts pending nodes while there is room, the canary rule allows it and the rollout is not paused. */
  private fill(): void {
    if (!this.started) return;
    while (this.rolloutState === 'running' && this.running < Math.max(1, this.options.maxParallel)) {
      const canary = this.nodes[0]!;
      if (canary.canary && canary.state !== 'done') {
        if (canary.state === 'pending') this.run(canary);
        break;
      }
      const next = this.nodes.find((n) => n.state === 'pending');
      if (!next) break;
      this.run(next);
    }
    this.settleIfIdle();
  }

  private run(node: RolloutNodeProgress): void {
    this.running++;
    node.state = 'running';
    node.started_at = Date.now();
    this.emit('node', { ...node });
    const report: RolloutReport = (step, detail) => {
      if (node.state !== 'running') return;
      node.step = step;
      node.detail = detail ?? null;
      this.emit('node', { ...node });
    };
    let outcome: Promise<RolloutJobResult>;
    try {
      outcome = this.job(node.node_id, report, this.abort.signal);
    } catch (error) {
      outcome = Promise.reject(error);
    }
    outcome.then(
      (result) => this.endNode(node, this.failedState(result), node.detail),
      (error: unknown) => this.endNode(node, this.failedState('failed'), error instanceof Error ? error.message : String(error)),
    ).finally(() => {
      this.running--;
      if (node.canary && node.state === 'failed') this.skipRest();
      this.fill();
    });
  }

  /** A job that fails once the rollout is cancelled was stopped by the cancel. */
  private failedState(result: RolloutJobResult): RolloutNodeState {
    if (result === 'done') return 'done';
    return this.abort.signal.aborted ? 'cancelled' : 'failed';
  }

  private skipRest(): void {
    for (const node of this.nodes) if (node.state === 'pending') this.endNode(node, 'skipped', 'the canary node failed');
  }

  private endNode(node: RolloutNodeProgress, state: RolloutNodeState, detail: string | null): void {
    if (FINAL_NODE_STATES.includes(node.state)) return;
    node.state = state;
    node.detail = detail;
    node.finished_at = Date.now();
    this.emit('node', { ...node });
  }

  /** Once no job runs and none can start any more, the rollout ends. */
  private settleIfIdle(): void {
    if (this.running > 0) return;
    const open = this.nodes.some((n) => n.state === 'pending');
    if (open && !isFinalRolloutState(this.rolloutState)) return;
    if (!isFinalRolloutState(this.rolloutState)) {
      this.setState(this.nodes.every((n) => n.state === 'done') ? 'done' : 'failed');
    }
    this.resolveFinished(this.progress());
  }

  private setState(state: RolloutState): void {
    if (this.rolloutState === state) return;
    this.rolloutState = state;
    this.emit('state', state);
  }
}
