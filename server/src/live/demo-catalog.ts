import { EventEmitter } from 'node:events';
import {
  ErrorCode, type DemoActions, type DemoExpectation, type DemoRemovedLiveMessage, type DemoUpdatedLiveMessage, type DemoView, type LabDemo,
} from '@dvic/protocol';
import { ApiError } from '../errors.js';
import type { DemoEntitiesRepository } from '../repositories/demo-entities-repository.js';
import { writeNow, type WriteScheduler } from '../services/deferred-writes.js';
import type { DemoRegistry } from './demo-registry.js';
import { DEFAULT_POLICY, labDemo, NO_ACTIONS, type DemoPolicy, type DemoSettings } from './demo-state.js';
import type { Schedule } from './lab-schedule.js';
import type { NodeRegistry } from './node-registry.js';

export interface DemoCatalogEvents {
  /** Demos whose state, runs, lines or settings changed. */
  updated: [LabDemo[]];
  /** Demos forgotten (dismissed, or without runs for too long). */
  removed: [string[]];
  /** Runs that stored lines, per node, coalesced (the node page's demo table follows them). */
  lines: [{ node_id: string; demos: DemoView[] }];
}

export interface DemoFilter {
  nodeId?: string;
  state?: LabDemo['state'];
  down?: boolean;
  expected?: boolean;
  label?: { key: string; value: string | undefined };
}

export interface DemoChange {
  expected?: boolean;
  schedule?: Schedule | null;
  notes?: string | null;
  /** Only the actions named change; null clears one. */
  actions?: Partial<DemoActions>;
}

/** Line updates are sent at most this often per demo: thousands of busy demos stay cheap. */
const LINES_FLUSH_MS = 500;

/**
 * Demos as the lab sees them: one per (node, demo name), gathering the runs the DemoRegistry
 * tracks, with what the lab set on them. Announces demos whose view changed: at once for runs
 * starting and ending, coalesced for lines, and on a periodic tick for what time changes
 * (schedules opening, "restarting" settling, crash loops ending, forgetting old demos).
 */
export class DemoCatalog extends EventEmitter<DemoCatalogEvents> {
  /** node id -> demo name -> settings: a node's status change looks at its own demos only. */
  private readonly byNode = new Map<string, Map<string, DemoSettings>>();
  private readonly byId = new Map<string, DemoSettings>();
  /** What each demo looked like when last announced (state, down, ...), to announce changes only. */
  private readonly announced = new Map<string, string>();
  private expectations: DemoExpectation[] = [];
  private readonly dirtyLines = new Map<string, Map<string, DemoView>>();
  private linesTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly runs: DemoRegistry,
    private readonly nodes: NodeRegistry,
    private readonly repository: DemoEntitiesRepository,
    readonly policy: DemoPolicy = DEFAULT_POLICY,
    private readonly deferred: WriteScheduler = writeNow,
  ) {
    super();
    runs.on('changed', ({ node_id, demos }) => this.onRunsChanged(node_id, demos));
    runs.on('lines', ({ node_id, demos }) => this.onLines(node_id, demos));
    nodes.on('updated', (node) => {
      this.ensureExpected(Date.now(), node.id);
      this.announceNode(node.id);
    });
    nodes.on('status', ({ node_id }) => this.announceNode(node_id));
  }

  /** Reads the demos' settings and the label rules from the database, after the runs are loaded (once, before use). */
  async load(): Promise<this> {
    for (const s of await this.repository.all()) this.remember(s);
    this.expectations = await this.repository.expectations();
    for (const nodeId of this.runs.nodeIds()) {
      for (const run of this.runs.list(nodeId)) this.ensure(nodeId, run.demo, run.since);
    }
    this.ensureExpected(Date.now());
    return this;
  }

  start(tickMs = 5_000): void {
    if (this.tickTimer) return;
    this.tickTimer = setInterval(() => this.tick(), tickMs);
    this.tickTimer.unref();
  }

  /** The clock alone (in a scaled-out lab only the leader judges late and missed runs); lines still flush. */
  stopTicks(): void {
    clearInterval(this.tickTimer);
    this.tickTimer = undefined;
  }

  stop(): void {
    this.stopTicks();
    clearTimeout(this.linesTimer);
  }

  list(filter: DemoFilter = {}, now = Date.now()): LabDemo[] {
    const views: LabDemo[] = [];
    const settings = filter.nodeId === undefined ? this.byId.values() : this.byNode.get(filter.nodeId)?.values() ?? [];
    for (const s of settings) {
      if (filter.label && !this.hasLabel(s.node_id, filter.label)) continue;
      const view = this.view(s, now);
      if (filter.state !== undefined && view.state !== filter.state) continue;
      if (filter.down !== undefined && view.down !== filter.down) continue;
      if (filter.expected !== undefined && view.expected !== filter.expected) continue;
      views.push(view);
    }
    return views.sort((a, b) => Number(b.down) - Number(a.down) || a.name.localeCompare(b.name) || a.node_id.localeCompare(b.node_id));
  }

  get(id: string, now = Date.now()): LabDemo {
    return this.view(this.settings(id), now);
  }

  async update(id: string, change: DemoChange): Promise<LabDemo> {
    const before = this.settings(id);
    const next: DemoSettings = {
      ...before,
      ...(change.expected !== undefined ? { expected: change.expected } : {}),
      ...(change.schedule !== undefined ? { schedule: change.schedule } : {}),
      ...(change.notes !== undefined ? { notes: change.notes } : {}),
      ...(change.actions !== undefined ? { actions: { ...before.actions, ...change.actions } } : {}),
    };
    await this.repository.save(next);
    this.repository.afterCommit(() => {
      this.applySettings(next);
      // A background save of the demo still waiting (ensure) would store its old settings after this.
      this.deferred.background(`demo-entity:${id}`, () => this.repository.save(next));
    });
    return this.view(next, Date.now());
  }

  listExpectations(): DemoExpectation[] {
    return this.expectations;
  }

  /** Every node with the label is expected to run the demo: demos it never ran appear, down. */
  async addExpectation(rule: Omit<DemoExpectation, 'id' | 'created_at'>): Promise<DemoExpectation> {
    const e: DemoExpectation = { ...rule, id: crypto.randomUUID(), created_at: Date.now() };
    if (!(await this.repository.addExpectation(e))) {
      throw new ApiError(409, ErrorCode.conflict, `nodes with ${rule.label_key}=${rule.label_value} are already expected to run ${rule.name}`);
    }
    this.repository.afterCommit(() => this.applyExpectation(e));
    return e;
  }

  async deleteExpectation(id: string): Promise<DemoExpectation> {
    const e = this.expectations.find((x) => x.id === id);
    if (!e || !(await this.repository.deleteExpectation(id))) throw new ApiError(404, ErrorCode.notFound, `no expectation with id ${id}`);
    this.repository.afterCommit(() => this.applyExpectationRemoved(id));
    return e;
  }

  /** Forgets a demo that is not running: its runs go, its logs stay; it comes back if it runs again. */
  async forget(id: string): Promise<void> {
    const s = this.settings(id);
    if (this.runs.runsOf(s.node_id, s.name).some((r) => r.alive)) {
      throw new ApiError(409, ErrorCode.conflict, `${s.name} is running: stop it before forgetting it`);
    }
    await this.repository.delete(id);
    this.repository.afterCommit(() => {
      this.applyForgotten(id);
      // A background save of the demo still waiting would bring it back: the delete replaces it.
      this.deferred.background(`demo-entity:${id}`, () => this.repository.delete(id));
    });
  }

  /** A demo's settings changed (here or on another replica): memory follows, listeners hear it. */
  applySettings(s: DemoSettings): void {
    this.remember(s);
    this.announce([this.view(s, Date.now())]);
  }

  /** A label rule added (here or on another replica). */
  applyExpectation(e: DemoExpectation): void {
    if (this.expectations.some((x) => x.id === e.id)) return;
    this.expectations = [...this.expectations, e].sort((a, b) => a.created_at - b.created_at);
    this.reviewAll();
  }

  /** A label rule removed (here or on another replica). */
  applyExpectationRemoved(id: string): void {
    this.expectations = this.expectations.filter((x) => x.id !== id);
    this.reviewAll();
  }

  /** The names of a node's demos (no view made: for a lookup by name). */
  namesOn(nodeId: string): string[] {
    return [...(this.byNode.get(nodeId)?.keys() ?? [])];
  }

  /** A demo forgotten (here or on another replica): its runs go from memory, listeners hear it. */
  applyForgotten(id: string): void {
    const s = this.byId.get(id);
    if (s) this.drop(s);
  }

  /**
   * Another replica's demos (cluster/remote-state.ts): it wrote the database, so this is memory
   * only: the settings and runs it shows, under its ids. Told to listeners (the alert engine).
   */
  applyRemote(message: DemoUpdatedLiveMessage | DemoRemovedLiveMessage): void {
    if (message.type === 'demo.removed') {
      for (const s of message.data.ids.flatMap((id) => this.byId.get(id) ?? [])) {
        const runs = this.runs.runsOf(s.node_id, s.name).map((r) => r.token);
        this.forgetSettings(s);
        this.runs.applyRemote({ node_id: s.node_id, demos: [], removed: runs });
      }
      this.emit('removed', message.data.ids);
      return;
    }
    for (const demo of message.data.demos) {
      const before = this.byNode.get(demo.node_id)?.get(demo.name);
      if (before && before.id !== demo.id) this.byId.delete(before.id); // made here too before the other's came: theirs is in the database
      const own = demo.expected_by === 'demo';
      this.remember({
        id: demo.id, node_id: demo.node_id, name: demo.name, expected: own, schedule: own || demo.expected_by === null ? demo.schedule : before?.schedule ?? null,
        notes: demo.notes, actions: demo.actions, created_at: before?.created_at ?? demo.last_activity_at,
      });
      const newest = demo.runs[0];
      this.runs.applyRemote({ node_id: demo.node_id, demos: demo.runs }, newest && demo.last_line !== null ? { token: newest.token, text: demo.last_line } : undefined);
      this.announced.set(demo.id, signature(demo));
    }
    this.emit('updated', message.data.demos);
  }

  /** Announces what time changed, and forgets unexpected demos without runs for too long. */
  tick(now = Date.now()): void {
    const changed: LabDemo[] = [];
    const old: DemoSettings[] = [];
    for (const s of this.byId.values()) {
      const view = this.view(s, now);
      if (!view.expected && view.state !== 'running' && view.state !== 'restarting' && now - view.last_activity_at > this.policy.forgetAfterMs) old.push(s);
      else if (this.announced.get(s.id) !== signature(view)) changed.push(view);
    }
    for (const s of old) this.deferred.background(`demo-entity:${s.id}`, () => this.repository.delete(s.id)); // after its save, if still on its way
    for (const s of old) this.drop(s);
    if (changed.length) this.announce(changed);
  }

  private view(s: DemoSettings, now: number): LabDemo {
    const node = this.nodes.get(s.node_id);
    const runs = this.runs.runsOf(s.node_id, s.name);
    const lastLine = runs.map((r) => this.runs.lastLine(r.token)).find((l) => l !== null) ?? null;
    const rule = this.ruleFor(s.node_id, s.name);
    return labDemo(s, runs, { now, nodeRevoked: node?.status === 'revoked', rule, lastLine }, this.policy);
  }

  private ruleFor(nodeId: string, name: string): DemoExpectation | undefined {
    const labels = this.nodes.get(nodeId)?.labels;
    return labels && this.expectations.find((e) => e.name === name && labels[e.label_key] === e.label_value);
  }

  /** Creates the demos label rules expect on nodes that never ran them (of one node, or all). */
  private ensureExpected(now: number, nodeId?: string): void {
    if (!this.expectations.length) return;
    for (const node of nodeId ? [this.nodes.get(nodeId)].filter((n) => n !== undefined) : this.nodes.list()) {
      for (const e of this.expectations) {
        if (node.labels[e.label_key] === e.label_value) this.ensure(node.id, e.name, now);
      }
    }
  }

  private reviewAll(): void {
    const now = Date.now();
    this.ensureExpected(now);
    this.announce([...this.byId.values()].map((s) => this.view(s, now)));
  }

  private settings(id: string): DemoSettings {
    const s = this.byId.get(id);
    if (!s) throw new ApiError(404, ErrorCode.notFound, `no demo with id ${id}`);
    return s;
  }

  private hasLabel(nodeId: string, label: { key: string; value: string | undefined }): boolean {
    const labels = this.nodes.get(nodeId)?.labels ?? {};
    return label.value === undefined ? label.key in labels : labels[label.key] === label.value;
  }

  private ensure(nodeId: string, name: string, now: number): DemoSettings {
    const existing = this.byNode.get(nodeId)?.get(name);
    if (existing) return existing;
    const s: DemoSettings = { id: crypto.randomUUID(), node_id: nodeId, name, expected: false, schedule: null, notes: null, actions: NO_ACTIONS, created_at: now };
    this.remember(s);
    this.deferred.background(`demo-entity:${s.id}`, () => this.repository.save(s));
    return s;
  }

  private remember(s: DemoSettings): void {
    let names = this.byNode.get(s.node_id);
    if (!names) this.byNode.set(s.node_id, (names = new Map()));
    names.set(s.name, s);
    this.byId.set(s.id, s);
  }

  private forgetSettings(s: DemoSettings): void {
    const names = this.byNode.get(s.node_id);
    if (names?.get(s.name) === s) names.delete(s.name); // not the newer settings of that name
    if (names?.size === 0) this.byNode.delete(s.node_id);
    this.byId.delete(s.id);
    this.announced.delete(s.id);
  }

  private drop(s: DemoSettings): void {
    this.forgetSettings(s);
    this.runs.forgetDemo(s.node_id, s.name);
    this.emit('removed', [s.id]);
  }

  private onRunsChanged(nodeId: string, demos: DemoView[]): void {
    const now = Date.now();
    const names = new Set(demos.map((d) => d.demo));
    const views = [...names].map((name) => this.view(this.ensure(nodeId, name, now), now));
    if (views.length) this.announce(views);
  }

  private onLines(nodeId: string, demos: DemoView[]): void {
    let node = this.dirtyLines.get(nodeId);
    if (!node) this.dirtyLines.set(nodeId, (node = new Map()));
    for (const d of demos) node.set(d.token, d);
    this.linesTimer ??= setTimeout(() => this.flushLines(), LINES_FLUSH_MS);
  }

  private flushLines(): void {
    this.linesTimer = undefined;
    const now = Date.now();
    const views: LabDemo[] = [];
    for (const [nodeId, runs] of this.dirtyLines) {
      this.emit('lines', { node_id: nodeId, demos: [...runs.values()] });
      for (const name of new Set([...runs.values()].map((r) => r.demo))) views.push(this.view(this.ensure(nodeId, name, now), now));
    }
    this.dirtyLines.clear();
    if (views.length) this.announce(views);
  }

  private announceNode(nodeId: string): void {
    const now = Date.now();
    const views = [...(this.byNode.get(nodeId)?.values() ?? [])].map((s) => this.view(s, now));
    const changed = views.filter((v) => this.announced.get(v.id) !== signature(v));
    if (changed.length) this.announce(changed);
  }

  private announce(views: LabDemo[]): void {
    for (const v of views) this.announced.set(v.id, signature(v));
    this.emit('updated', views);
  }
}

/** What time or the node can change in a demo's view without a run changing. */
const signature = (v: LabDemo): string =>
  `${v.state}|${v.down}|${v.in_schedule}|${v.crash_loop}|${v.expected}|${v.restarts_today}|${v.runs.length}`;
