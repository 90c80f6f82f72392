import { AsyncLocalStorage } from 'node:async_hooks';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ErrorCode, type Alert, type AlertRule, type DeviceView, type HardwareState, type LabDemo, type NodeView } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';
import { ApiError } from '../errors.js';
import type { DemoCatalog } from '../live/demo-catalog.js';
import type { DeviceRegistry } from '../live/device-registry.js';
import type { NodeRegistry } from '../live/node-registry.js';
import type { AlertsRepository } from '../repositories/alerts-repository.js';
import { writeNow, type WriteScheduler } from '../services/deferred-writes.js';
import { reportQuietly } from '../services/latest-writes.js';
import type { AlertConfig } from './alert-config.js';
import type { AlertPolicy } from './alert-policy.js';
import { demoConditionKey, demoConditions, deviceConditions, hardwareConditions, nodeConditions, type Condition } from './conditions.js';
import { ErrorRate } from './error-rate.js';
import { muteCovers } from './mutes.js';
import { RULE_KINDS } from './rule-kinds.js';
import { inScope } from './scope.js';

/** What an alert tells its channels. */
export type NotifyKind = 'firing' | 'resolved' | 'repeat' | 'flapping';
export interface Notification {
  kind: NotifyKind;
  alert: Alert;
  rule: AlertRule;
  /** Which of the rule's alerts it is (the same across its firings): a group keeps the latest per key. */
  key: string;
}

/** One rule's view of one subject, in `tracked`. */
const trackedId = (ruleId: string, conditionKey: string): string => `${ruleId}|${conditionKey}`;

/** Where the engine hears about the lab: the registries. */
export interface AlertSources {
  nodes: NodeRegistry;
  demos: DemoCatalog;
  devices: DeviceRegistry;
  /** The demo's last log lines, oldest first. */
  lastLines(nodeId: string, demo: string): string[];
  /** The agent version the server ships now (it follows the agent file, DVIC_AGENT_FILE). */
  shippedAgentVersion(): string | null;
}

/** An alert's newest body, and the notifications it decided that no committed write stored yet. */
interface Newest {
  alert: Alert;
  key: string;
  told: Notification[];
}

/** One rule's view of one subject: pending (for_s running), firing, flapping. */
interface Tracked {
  rule: AlertRule;
  cond: Condition;
  active: boolean;
  alert?: Alert;
  pending?: NodeJS.Timeout;
  pendingDue?: number;
  changes: number[];
  flapping: boolean;
  stable?: NodeJS.Timeout;
  repeat?: NodeJS.Timeout;
}

const LONGEST_TIMER_MS = 2_000_000_000;
/** How often the shipped agent version is looked at (a stat of the agent file): a new one re-judges every node. */
const RELEASE_CHECK_MS = 30_000;
/** The history is trimmed to its newest resolved alerts (AlertsRepository) every this many resolutions. */
const TRIM_EVERY = 500;

/**
 * Runs a function outside any caller's transaction: the engine's writes are its own, whatever
 * request or event made it judge (captured at load, when no async context holds a transaction).
 */
const outsideCallers = AsyncLocalStorage.snapshot();

/** Records a notification in the transaction of the alert change that decides it (the leader's outbox). */
export type NotificationRecorder = (n: Notification) => Promise<void>;

/** Where the engine writes: each alert change in a transaction of its own (db/sql.ts). */
export type AlertWrites = Pick<Sql, 'transaction' | 'afterCommit'>;

/**
 * Evaluates the rules on the registries' events (never by scanning every row on a clock): a node's
 * status or hardware state, a demo's view, a device's status. A condition that holds for its
 * rule's for_s fires an alert; it resolves when the condition ends. Flapping, mutes, node
 * dependencies and repeats decide what is told (`notify`); `updated` carries every alert change.
 * A service with start()/stop(), so that one replica can run it under a lease later: every
 * write goes through `writes.transaction` (persist()), the one place a leader lease wraps.
 *
 * Judging is synchronous, in memory; writes are async. The changes of one alert (rule + subject)
 * reach the database in the order they were made (a chain per alert), and what they cause is
 * told ('updated', 'notify') only once its write committed: a notification is recorded (the alert
 * with its notified_at) before it is sent.
 */
export class AlertEngine extends EventEmitter<{ updated: [Alert]; notify: [Notification] }> {
  private readonly tracked = new Map<string, Tracked>();
  private readonly errors = new ErrorRate();
  private readonly errorTimers = new Map<string, NodeJS.Timeout>();
  private readonly unsubscribe: (() => void)[] = [];
  private muteTimer: NodeJS.Timeout | undefined;
  private releaseTimer: NodeJS.Timeout | undefined;
  private shippedVersion: string | null = null;
  private resolvedSinceTrim = 0;
  private running = false;
  /** Per alert (rule + subject): the last write queued, so the next waits for it. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Per alert id: its newest body, which a queued write stores (an older one never overwrites it). */
  private readonly newest = new Map<string, Newest>();
  /** Set on a shared database: notifications recorded in the alert's own transaction (null: told after commit only). */
  private recorder: NotificationRecorder | null = null;

  constructor(
    private readonly sources: AlertSources,
    private readonly config: AlertConfig,
    private readonly repository: AlertsRepository,
    private readonly policy: AlertPolicy,
    private readonly writes: AlertWrites,
    private readonly deferred: WriteScheduler = writeNow,
  ) {
    super();
  }

  /**
   * Each notification is recorded by `recorder` inside the transaction that stores its alert
   * change: both commit or neither does (a leader killed between them cannot leave an alert stored
   * as notified that nobody tells). 'notify' is still emitted after commit.
   */
  recordNotificationsWith(recorder: NotificationRecorder | null): void {
    this.recorder = recorder;
  }

  /** Starts judging; one that fails (the database away) is undone, so that a later start() starts again. */
  async start(): Promise<void> {
    if (this.running) return;
    // Bodies held from an earlier term are stale (another leader may have resolved or acked them
    // since), and so are the notifications they carry: the database says what is firing now.
    this.newest.clear();
    this.running = true;
    try {
      // What the other replicas set up while this one did not judge (a follower elected) is read first.
      await this.config.reloadAll();
      for (const { alert, key } of await this.repository.firing()) this.adopt(alert, key);
    } catch (err) {
      this.stop();
      throw err;
    }
    this.followSources();
  }

  /** Judges what the registries and the configuration tell from now on. */
  private followSources(): void {
    const { nodes, demos, devices } = this.sources;
    const onStatus = ({ node_id }: { node_id: string }) => this.onNodeStatus(node_id);
    const onUpdated = (node: NodeView) => this.onNode(node.id);
    const onHardware = ({ node_id, hardware }: { node_id: string; hardware: HardwareState }) => this.onHardware(node_id, hardware);
    const onDemos = (views: LabDemo[]) => { for (const d of views) this.onDemo(d); };
    const onDevice = ({ device }: { device?: DeviceView }) => { if (device) this.onDevice(device); };
    const onDeviceRemoved = (id: string) => this.forgetKey(`device:${id}`);
    const onRules = () => this.reviewAll();
    const onMutes = () => this.reviewMutes();
    nodes.on('status', onStatus).on('updated', onUpdated).on('hardware', onHardware);
    demos.on('updated', onDemos);
    devices.on('status', onDevice).on('removed', onDeviceRemoved);
    this.config.on('rules', onRules).on('mutes', onMutes);
    this.unsubscribe.push(() => {
      nodes.off('status', onStatus).off('updated', onUpdated).off('hardware', onHardware);
      demos.off('updated', onDemos);
      devices.off('status', onDevice).off('removed', onDeviceRemoved);
      this.config.off('rules', onRules).off('mutes', onMutes);
    });
    this.reviewAll();
    this.reviewMutes();
    this.shippedVersion = this.sources.shippedAgentVersion();
    this.releaseTimer = setInterval(() => this.checkRelease(), RELEASE_CHECK_MS);
    this.releaseTimer.unref();
  }

  /**
   * Re-judges every node's agent version when the shipped agent changed (the agent file was replaced):
   * a node's own events may be hours away. Run on a timer; tests call it directly.
   */
  checkRelease(): void {
    if (!this.running) return;
    const version = this.sources.shippedAgentVersion();
    if (version === this.shippedVersion) return;
    this.shippedVersion = version;
    for (const node of this.sources.nodes.list()) this.onNode(node.id);
  }

  stop(): void {
    this.running = false;
    for (const off of this.unsubscribe.splice(0)) off();
    for (const t of this.tracked.values()) this.clearTimers(t);
    this.tracked.clear();
    clearTimeout(this.muteTimer);
    clearInterval(this.releaseTimer);
    for (const timer of this.errorTimers.values()) clearTimeout(timer);
    this.errorTimers.clear();
  }

  /** Writes still queued are waited for (a test, a stop): then the database says what memory does. */
  async settled(): Promise<void> {
    while (this.chains.size) await Promise.all(this.chains.values());
  }

  async list(filter: { state?: Alert['state']; ruleId?: string; limit: number }): Promise<Alert[]> {
    await this.settled();
    return this.repository.list(filter);
  }

  /** The newest body while this replica judges; read from the database otherwise (another replica judges). */
  async get(id: string): Promise<Alert> {
    const alert = (this.running ? this.newest.get(id)?.alert : undefined) ?? await this.repository.get(id);
    if (!alert) throw new ApiError(404, ErrorCode.notFound, `no alert with id ${id}`);
    return alert;
  }

  /**
   * Acknowledged: someone is on it, so it stops repeating (it still resolves, and says so).
   * Written in the caller's transaction (the audited request), on the stored row locked meanwhile;
   * writes of the alert still queued keep the acknowledgement (they store the newest body, and keep
   * an ack stored by another replica: save()). The leader hears another replica's ack (applyRemote).
   */
  async ack(id: string, by: string): Promise<Alert> {
    const stored = await this.repository.getForChange(id);
    const alert = (this.running ? this.newest.get(id)?.alert : undefined) ?? stored?.alert;
    if (!alert) throw new ApiError(404, ErrorCode.notFound, `no alert with id ${id}`);
    if (alert.state !== 'firing') throw new ApiError(409, ErrorCode.conflict, 'only a firing alert can be acknowledged');
    const t = this.running ? [...this.tracked.values()].find((x) => x.alert?.id === id) : undefined;
    const acked: Alert = { ...alert, acked_at: Date.now(), acked_by: by };
    const key = t?.cond.key ?? this.newest.get(id)?.key ?? stored?.key ?? '';
    await this.repository.save(acked, key);
    // Memory follows the database: a rolled-back request (its audit entry refused) leaves it unacked.
    this.writes.afterCommit(() => {
      this.applyAck(acked);
      this.emit('updated', acked);
    });
    return acked;
  }

  /** Another replica's change of an alert (alert.updated): an acknowledgement made there stops the repeats here. */
  applyRemote(alert: Alert): void {
    if (this.running && alert.acked_at !== null) this.applyAck(alert);
  }

  /** The tracked alert (and its newest body) acknowledged as `acked` says; no more repeats. */
  private applyAck(acked: Alert): void {
    const t = [...this.tracked.values()].find((x) => x.alert?.id === acked.id);
    if (t?.alert && t.alert.acked_at === null) {
      t.alert = { ...t.alert, acked_at: acked.acked_at, acked_by: acked.acked_by };
      clearTimeout(t.repeat);
    }
    const newest = this.newest.get(acked.id);
    if (newest && newest.alert.acked_at === null) newest.alert = { ...newest.alert, acked_at: acked.acked_at, acked_by: acked.acked_by };
  }

  /** Every subject again, against every rule: at start and when rules change (not on a clock). */
  reviewAll(): void {
    const known = new Set(this.config.listRules().filter((r) => r.enabled).map((r) => r.id));
    for (const [id, t] of this.tracked) {
      if (!known.has(t.rule.id)) this.drop(id, t);
    }
    for (const node of this.sources.nodes.list()) {
      this.onNode(node.id);
      if (node.hardware) this.onHardware(node.id, node.hardware);
    }
    for (const demo of this.sources.demos.list()) this.onDemo(demo);
    for (const device of this.sources.devices.list()) this.onDevice(device);
  }

  /**
   * A mute added, ended or lifted: firing alerts it covers go quiet (no repeats); those it no longer
   * covers are told now. Looked at again when the next mute starts or ends (a timer, not a clock).
   */
  private reviewMutes(): void {
    clearTimeout(this.muteTimer);
    const now = Date.now();
    for (const t of this.tracked.values()) {
      if (!t.alert || t.flapping) continue;
      const muted = this.isMuted(t.rule, t.cond, now);
      if (muted === t.alert.muted) continue;
      if (muted) {
        t.alert = { ...t.alert, muted };
        this.save(t.alert, t.cond.key);
      } else this.tell(t, t.alert.notified_at === null ? 'firing' : 'repeat', now);
    }
    const next = Math.min(...this.config.activeMutes(now).flatMap((m) => [m.starts_at, m.ends_at]).filter((at) => at > now));
    if (!Number.isFinite(next)) return;
    this.muteTimer = setTimeout(() => { if (this.running) this.reviewMutes(); }, Math.min(next - now + 5, LONGEST_TIMER_MS));
    this.muteTimer.unref();
  }

  private rulesOf(subject: 'node' | 'demo' | 'device'): AlertRule[] {
    return this.config.listRules().filter((r) => r.enabled && RULE_KINDS[r.kind].subject === subject);
  }

  private onNode(nodeId: string): void {
    const node = this.sources.nodes.view(nodeId);
    if (!node) return;
    const now = Date.now();
    for (const rule of this.rulesOf('node')) {
      for (const c of nodeConditions(rule, node, this.sources.shippedAgentVersion(), now)) this.observe(rule, c, now);
    }
  }

  /** A node going away holds its demos' alerts back (its own alert says it all); back, they are judged again. */
  private onNodeStatus(nodeId: string): void {
    this.onNode(nodeId);
    if (this.nodeAway(nodeId)) this.cancelPendingDemos(nodeId);
    else for (const demo of this.sources.demos.list({ nodeId })) this.onDemo(demo);
  }

  private nodeAway(nodeId: string | null): boolean {
    return nodeId !== null && this.sources.nodes.view(nodeId)?.status !== 'online';
  }

  private onHardware(nodeId: string, hardware: HardwareState): void {
    const node = this.sources.nodes.view(nodeId);
    if (!node) return;
    const now = Date.now();
    for (const rule of this.rulesOf('node')) {
      for (const c of hardwareConditions(rule, node, hardware, now)) this.observe(rule, c, now);
    }
  }

  private onDemo(demo: LabDemo): void {
    const node = this.sources.nodes.view(demo.node_id);
    if (!node) return;
    const now = Date.now();
    const key = demoConditionKey(demo.node_id, demo.name);
    const rate = this.errors.observe(key, demo.error_count, now);
    for (const rule of this.rulesOf('demo')) {
      if (rule.kind === 'log_errors') this.observe(rule, this.errorCondition(rule, demo, node, rate, now), now);
      for (const c of demoConditions(rule, demo, node, now)) this.observe(rule, c, now);
    }
    if (rate > 0) this.recheckErrors(key, demo);
  }

  private errorCondition(rule: AlertRule, d: LabDemo, node: NodeView, rate: number, now: number): Condition {
    const [c] = demoConditions({ ...rule, kind: 'demo_crashed' }, d, node, now);
    return { ...c!, active: rate > (rule.threshold ?? Infinity), since: now, value: rate, summary: `${d.name} on ${node.name} logged ${rate} errors in the last minute` };
  }

  /** The error rate falls by itself as lines age: look again when the oldest leave the window. */
  private recheckErrors(key: string, demo: LabDemo): void {
    clearTimeout(this.errorTimers.get(key));
    const at = this.errors.nextDrop(key);
    if (at === null) return;
    const timer = setTimeout(() => {
      this.errorTimers.delete(key);
      if (this.running) this.onDemo(demo);
    }, Math.max(0, at - Date.now()) + 10);
    timer.unref();
    this.errorTimers.set(key, timer);
  }

  private onDevice(device: DeviceView): void {
    const node = device.node_id ? this.sources.nodes.view(device.node_id) : undefined;
    const now = Date.now();
    for (const rule of this.rulesOf('device')) {
      for (const c of deviceConditions(rule, device, node)) this.observe(rule, c, now);
    }
  }

  /** The heart: one condition of one rule, as it is now. */
  private observe(rule: AlertRule, cond: Condition, now: number): void {
    const id = trackedId(rule.id, cond.key);
    let t = this.tracked.get(id);
    const active = cond.active && inScope(rule.scope, cond.target);
    if (!t) {
      if (!active) return;
      this.tracked.set(id, (t = { rule, cond, active: false, changes: [], flapping: false }));
    }
    t.rule = rule;
    t.cond = cond;
    // Only what people would hear counts toward flapping: firing, and ending while firing. Blips
    // shorter than the rule's "for" never fire, so they must not add up to a flapping message.
    if (active !== t.active && (t.flapping || t.alert)) this.countChange(t, now);
    t.active = active;
    if (t.flapping) return;
    if (!active) {
      this.end(id, t, now);
      return;
    }
    // A condition that holds only from a later time (a silent demo that wrote again) has ended for now.
    if (t.alert && cond.since > now) this.resolve(t, now);
    this.holdOrFire(t, now);
  }

  private countChange(t: Tracked, now: number): void {
    t.changes = [...t.changes.filter((at) => at > now - this.policy.flapWindowMs), now];
    if (t.flapping) this.armStable(t);
    else if (t.changes.length > this.policy.flapChanges) this.startFlapping(t, now);
  }

  private holdOrFire(t: Tracked, now: number): void {
    if (t.alert) return;
    if (t.cond.subject.type === 'demo' && this.nodeAway(t.cond.subject.node_id)) return;
    if (this.saidByACrash(t)) return;
    const due = t.cond.since + t.rule.for_s * 1000;
    if (due <= now) {
      this.fireCounted(t, now);
      return;
    }
    if (t.pending && t.pendingDue === due) return;
    clearTimeout(t.pending);
    t.pendingDue = due;
    t.pending = setTimeout(() => {
      t.pending = undefined;
      if (this.running && t.active && !t.flapping && !t.alert && !(t.cond.subject.type === 'demo' && this.nodeAway(t.cond.subject.node_id)) && !this.saidByACrash(t)) this.fireCounted(t, Date.now());
    }, Math.min(due - now, LONGEST_TIMER_MS));
    t.pending.unref();
  }

  /** Firing is a change: one too many in the window is flapping (which says so instead). */
  private fireCounted(t: Tracked, now: number): void {
    this.countChange(t, now);
    if (!t.flapping) this.fire(t, now);
  }

  private fire(t: Tracked, now: number): void {
    const { rule, cond } = t;
    const alert: Alert = {
      id: crypto.randomUUID(), rule_id: rule.id, rule_name: rule.name, kind: rule.kind, severity: rule.severity, subject: cond.subject,
      state: 'firing', summary: cond.summary, value: cond.value,
      last_lines: this.lastLinesOf(cond),
      started_at: now, resolved_at: null, flapping: false, muted: this.isMuted(rule, cond, now), acked_at: null, acked_by: null, notified_at: null,
    };
    t.alert = alert;
    this.save(alert, cond.key);
    this.tell(t, 'firing', now);
  }

  /** A demo's last lines; an alert goes out without them rather than not at all. */
  private lastLinesOf(cond: Condition): string[] {
    const { node_id: nodeId, demo } = cond.subject;
    if (cond.subject.type !== 'demo' || !nodeId || !demo) return [];
    try {
      return this.sources.lastLines(nodeId, demo);
    } catch {
      return [];
    }
  }

  private end(id: string, t: Tracked, now: number): void {
    clearTimeout(t.pending);
    t.pending = undefined;
    if (t.alert) this.resolve(t, now);
    if (!t.changes.length || t.changes.at(-1)! <= now - this.policy.flapWindowMs) this.drop(id, t);
  }

  private resolve(t: Tracked, now: number): void {
    const alert: Alert = { ...t.alert!, state: 'resolved', resolved_at: now, flapping: false };
    t.alert = undefined;
    clearTimeout(t.repeat);
    // Whoever heard it fire hears it end; a muted alert (or one that ends under a mute) ends quietly.
    const told = alert.notified_at !== null && !this.isMuted(t.rule, t.cond, now);
    this.save(alert, t.cond.key, told ? { kind: 'resolved', alert, rule: t.rule, key: t.cond.key } : undefined);
    if (++this.resolvedSinceTrim >= TRIM_EVERY) {
      this.resolvedSinceTrim = 0;
      outsideCallers(() => this.deferred.run('alerts-trim', () => this.repository.trimResolved())
        .catch((err: unknown) => reportQuietly(this.deferred, err, 'trimming the alert history')));
    }
  }

  private startFlapping(t: Tracked, now: number): void {
    t.flapping = true;
    clearTimeout(t.pending);
    t.pending = undefined;
    if (!t.alert) this.fire(t, now);
    t.alert = { ...t.alert!, flapping: true };
    this.save(t.alert, t.cond.key);
    this.tell(t, 'flapping', now);
    this.armStable(t);
  }

  /** Quiet until no change for flapStableMs; then it is firing or resolved like any other. */
  private armStable(t: Tracked): void {
    clearTimeout(t.stable);
    t.stable = setTimeout(() => {
      if (!this.running) return;
      t.flapping = false;
      t.changes = [];
      const now = Date.now();
      if (!t.active) {
        this.end(trackedId(t.rule.id, t.cond.key), t, now);
        return;
      }
      t.alert = { ...t.alert!, flapping: false };
      this.save(t.alert, t.cond.key);
      this.tell(t, 'firing', now);
    }, this.policy.flapStableMs);
    t.stable.unref();
  }

  /** Notifies (unless muted, or told before and quiet now) and plans the repeat. */
  private tell(t: Tracked, kind: NotifyKind, now: number): void {
    const alert = t.alert!;
    const muted = this.isMuted(t.rule, t.cond, now);
    if (muted !== alert.muted) t.alert = { ...alert, muted };
    if (muted || (t.flapping && kind !== 'flapping')) {
      this.save(t.alert!, t.cond.key);
      return;
    }
    t.alert = { ...t.alert!, notified_at: now };
    this.save(t.alert, t.cond.key, { kind, alert: t.alert, rule: t.rule, key: t.cond.key });
    this.armRepeat(t);
  }

  private armRepeat(t: Tracked): void {
    clearTimeout(t.repeat);
    if (t.rule.repeat_s === null || !t.alert || t.alert.acked_at !== null) return;
    t.repeat = setTimeout(() => {
      if (!this.running || !t.alert || t.alert.acked_at !== null || t.flapping) return;
      if (t.cond.subject.type === 'demo' && this.nodeAway(t.cond.subject.node_id)) this.armRepeat(t);
      else this.tell(t, 'repeat', Date.now());
    }, Math.min(t.rule.repeat_s * 1000, LONGEST_TIMER_MS));
    t.repeat.unref();
  }

  /** An expected demo that crashed is down too: its crash alert says it all. */
  private saidByACrash(t: Tracked): boolean {
    if (t.rule.kind !== 'demo_down') return false;
    return [...this.tracked.values()].some((o) => o.rule.kind === 'demo_crashed' && o.cond.key === t.cond.key && o.alert !== undefined);
  }

  /** Muted by a mute or maintenance window. */
  private isMuted(rule: AlertRule, cond: Condition, now: number): boolean {
    return this.config.activeMutes(now).some((m) => muteCovers(m, rule.id, cond.subject, now));
  }

  /** Demo alerts waiting out their for_s on a node that went away will not fire (the node's alert says it all). */
  private cancelPendingDemos(nodeId: string): void {
    // Looked up by key, not by a pass over every tracked condition: a stop takes every node away.
    // (A demo forgotten meanwhile keeps its timer, which looks at the node again when it fires.)
    const demoRules = this.config.listRules().filter((r) => RULE_KINDS[r.kind].subject === 'demo');
    for (const name of this.sources.demos.namesOn(nodeId)) {
      for (const rule of demoRules) {
        const t = this.tracked.get(trackedId(rule.id, demoConditionKey(nodeId, name)));
        if (!t?.pending) continue;
        clearTimeout(t.pending);
        t.pending = undefined;
      }
    }
  }

  /** A firing alert from before a restart: tracked again, its condition judged on the next event (or review). */
  private adopt(alert: Alert, key: string): void {
    const rule = this.config.listRules().find((r) => r.id === alert.rule_id);
    const cond: Condition = { key, subject: alert.subject, target: { nodeId: alert.subject.node_id, labels: {}, demo: alert.subject.demo }, active: true, since: alert.started_at, value: alert.value, summary: alert.summary };
    if (!rule) {
      this.save({ ...alert, state: 'resolved', resolved_at: Date.now() }, key);
      return;
    }
    const t: Tracked = { rule, cond, active: true, alert, changes: [], flapping: false };
    this.tracked.set(trackedId(rule.id, key), t);
    if (alert.notified_at !== null) this.armRepeat(t);
  }

  private forgetKey(key: string): void {
    const now = Date.now();
    for (const [id, t] of this.tracked) {
      if (t.cond.key === key) {
        t.active = false;
        this.end(id, t, now);
        this.drop(id, t);
      }
    }
  }

  private drop(id: string, t: Tracked): void {
    if (t.alert) this.resolve(t, Date.now());
    this.clearTimers(t);
    this.tracked.delete(id);
  }

  private clearTimers(t: Tracked): void {
    clearTimeout(t.pending);
    clearTimeout(t.stable);
    clearTimeout(t.repeat);
  }

  /**
   * Queues the write of an alert's change after the alert's earlier ones; once it committed, the
   * change is announced and its notification (if any) told. A write stores the alert's newest body
   * with the notifications that body carries (recorded in the same transaction when a recorder is
   * set), so a stored notified_at always comes with its notification. A write the disk refuses waits
   * for room (DeferredWrites) and is told then; the engine's memory stays right meanwhile.
   */
  private save(alert: Alert, key: string, notification?: Notification): void {
    this.remember(alert, key, notification);
    const write = async () => {
      let stored: Newest = { alert, key, told: [] };
      let told: Notification[] = [];
      let taken: Notification[] = [];
      let ackedElsewhere = false;
      await this.persist(async () => {
        // Read in the transaction: a change made meanwhile (an ack) is in what is stored.
        stored = this.newest.get(alert.id) ?? stored;
        taken = stored.told;
        ackedElsewhere = await this.keepStoredAck(stored);
        // An acknowledged alert does not repeat: a repeat decided before the ack was heard is not told.
        told = ackedElsewhere ? taken.filter((n) => n.kind !== 'repeat') : taken;
        await this.repository.save(stored.alert, stored.key);
        if (this.recorder) for (const n of told) await this.recorder(n);
      });
      if (ackedElsewhere) this.applyAck(stored.alert);
      // Recorded now: neither this body nor a newer one (remembered meanwhile, carrying them on) records them again.
      for (const entry of [stored, this.newest.get(alert.id)]) if (entry) entry.told = entry.told.filter((n) => !taken.includes(n));
      if (this.newest.get(alert.id) === stored && stored.alert.state === 'resolved' && !stored.told.length) this.newest.delete(alert.id);
      this.emit('updated', stored.alert);
      for (const n of told) this.emit('notify', n);
    };
    const chain = `${alert.rule_id}|${key}`;
    const queued = (this.chains.get(chain) ?? Promise.resolve()).then(() => outsideCallers(() => this.writeOrWait(alert.id, write)));
    this.chains.set(chain, queued);
    void queued.then(() => { if (this.chains.get(chain) === queued) this.chains.delete(chain); });
  }

  /**
   * An acknowledgement stored by another replica (or a request) since this body was made is kept:
   * the stored row (locked until the write commits) is read first. Whether one was taken in.
   */
  private async keepStoredAck(entry: Newest): Promise<boolean> {
    if (entry.alert.acked_at !== null) return false;
    const current = (await this.repository.getForChange(entry.alert.id))?.alert;
    if (!current || current.acked_at === null) return false;
    entry.alert = { ...entry.alert, acked_at: current.acked_at, acked_by: current.acked_by };
    return true;
  }

  /** The one entry point of the engine's writes: a transaction of its own (under the leader lease, later). */
  private persist(work: () => Promise<void>): Promise<void> {
    return this.writes.transaction(work);
  }

  /** The alert's newest body; the notifications not yet stored stay with it (the next write stores them). */
  private remember(alert: Alert, key: string, notification?: Notification): void {
    const told = this.newest.get(alert.id)?.told ?? [];
    this.newest.set(alert.id, { alert, key, told: notification ? [...told, notification] : told });
  }

  /** Runs a write; one the disk refuses waits for room (DeferredWrites: told once stored), any other error is reported. */
  private async writeOrWait(alertId: string, write: () => Promise<void>): Promise<void> {
    try {
      await this.deferred.run(`alert:${alertId}`, write);
    } catch (err) {
      reportQuietly(this.deferred, err, `storing alert ${alertId}`);
    }
  }
}
