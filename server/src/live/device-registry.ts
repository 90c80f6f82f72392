import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  ErrorCode, type DeviceDetailView, type DeviceRemovedLiveMessage, type DevicesSeenLiveMessage, type DeviceStatusLiveMessage, type DeviceUpdatedLiveMessage,
  type DeviceView,
} from '@dvic/protocol';
import { ApiError } from '../errors.js';
import type { DeviceRecord, DevicesRepository, DeviceTransition, NewPing, PingedDevice } from '../repositories/devices-repository.js';
import type { WriteScheduler } from '../services/deferred-writes.js';
import { newSecret, sha256Hex } from '../services/tokens.js';
import { dueTransitions, statusAfterPing, uptimePercent, type DeviceStatus } from './device-status.js';

/** A ping as every URL shape reduces to it (services/device-pings.ts). */
export interface Ping {
  kind: NewPing['kind'];
  source: NewPing['source'];
  status: string | null;
  message: string | null;
  body: string | null;
  numbers: Record<string, number>;
  logs: NewPing['logs'];
  firmware?: string;
  demo?: string;
  /** Why a fail ping fails (shown as the transition's reason). */
  reason?: string;
}

export interface DeviceInput {
  name: string;
  labels?: Record<string, string>;
  nodeId?: string | null;
  periodS?: number;
  graceS?: number;
}

export interface DeviceRegistryOptions {
  /** How often pings are written, in one transaction (the 204 path only queues them). */
  flushMs: number;
  /** How often late and down are looked for. */
  tickMs: number;
  /** How often devices seen are told to live subscribers (devices.seen). */
  seenMs: number;
  /** Pings kept per device (older ones deleted; ping_count keeps the total). */
  keepPings: number;
  /** Pings queued while the disk refuses writes, at most; beyond, the oldest are given up (counted in `dropped`). */
  maxPending: number;
  /** The same queue's size in bytes (about: text counted twice, UTF-16), at most; the oldest are given up beyond. */
  maxPendingBytes: number;
  /** Status changes queued while the disk refuses writes, at most; the oldest are given up beyond. */
  maxPendingTransitions: number;
}

export const DEFAULT_PERIOD_S = 60;
export const DEFAULT_GRACE_S = 30;
const DAY_MS = 86_400_000;
const TRIM_EVERY_MS = 60_000;
/** A queue this long is written at once rather than at the next flush tick. */
const FLUSH_AT = 5000;
/** What a queued ping costs besides its text (object, ids, timestamps). */
const PING_OVERHEAD_BYTES = 200;

/** About how much memory a queued ping holds (strings are UTF-16 in V8). */
export function pingBytes(p: NewPing): number {
  let chars = (p.body?.length ?? 0) + (p.message?.length ?? 0) + (p.status?.length ?? 0);
  for (const key of Object.keys(p.numbers)) chars += key.length + 8;
  for (const line of p.logs) chars += JSON.stringify(line).length;
  return PING_OVERHEAD_BYTES + 2 * chars;
}

export const DEVICE_TOKEN_PREFIX = 'dvk_';

type SeenItem = DevicesSeenLiveMessage['data']['devices'][number];
interface RegistryEvents {
  status: [DeviceStatusLiveMessage['data']];
  updated: [DeviceView];
  removed: [string];
  seen: [SeenItem[]];
  flushed: [number];
  /** A ping's numeric fields, for the metric history. */
  numbers: [{ device_id: string; at: number; numbers: Record<string, number> }];
}

export function deviceView(d: DeviceRecord): DeviceView {
  return {
    id: d.id, name: d.name, labels: d.labels, node_id: d.nodeId, period_s: d.periodS, grace_s: d.graceS, status: d.status,
    status_since: d.statusSince, last_seen: d.lastSeen, last_status: d.lastStatus, last_message: d.lastMessage, firmware: d.firmware,
    demo: d.demo, numbers: d.numbers, run_started_at: d.runStartedAt, ping_count: d.pingCount, created_at: d.createdAt,
  };
}

/** Database reads of an unknown token while other token changes keep coming; past them the ping is refused (the device pings again). */
const MAX_TOKEN_READS = 3;

/**
 * Every keepalive device in memory: the state machine (new, up, late, down, paused; each change
 * timestamped, emitted at once) and a write queue, so a ping costs a hash and a map lookup and is
 * written with the others every flushMs, in one transaction. Settings changes are written at once
 * (inside the caller's audited transaction), memory following once it commits. Reads are
 * synchronous, from memory (history comes from the database). Each kind of change has one
 * `apply...` method that updates memory and tells listeners: the same for a change made here and
 * one made by another replica.
 */
export class DeviceRegistry extends EventEmitter<RegistryEvents> {
  private readonly byId = new Map<string, DeviceRecord>();
  private readonly byToken = new Map<string, DeviceRecord>();
  /** Counts the token hashes forgotten: a database read begun before one must not bring an old hash back. */
  private tokensForgotten = 0;
  private pings: NewPing[] = [];
  private pendingBytes = 0;
  private transitions: DeviceTransition[] = [];
  /** The last flush: flushes run one after the other, so a device's rows are written in order. */
  private flushing: Promise<void> = Promise.resolve();
  private tickTimer: NodeJS.Timeout | undefined;
  /** Devices pinged here since the last flush, with their pings' count: this replica writes their ping fields. */
  private readonly pinged = new Map<DeviceRecord, number>();
  /** Devices whose status changed here since the last flush: this replica writes their status. */
  private readonly judged = new Set<DeviceRecord>();
  private readonly seen = new Set<string>();
  /** Other replicas make devices and tokens in the same database (load's option). */
  private sharedDatabase = false;
  private readonly untrimmed = new Set<string>();
  private timers: NodeJS.Timeout[] = [];
  /** Pings given up because the disk refused writes for too long. */
  dropped = 0;
  /** Status changes given up (not in the history; the device's current status is kept) for the same reason. */
  droppedTransitions = 0;

  /** What the queue of unwritten pings holds, about, in bytes. */
  get pendingPingBytes(): number {
    return this.pendingBytes;
  }

  get pendingCounts(): { pings: number; transitions: number } {
    return { pings: this.pings.length, transitions: this.transitions.length };
  }

  constructor(
    private readonly store: DevicesRepository,
    private readonly writes: WriteScheduler,
    private readonly options: DeviceRegistryOptions,
  ) {
    super();
  }

  /**
   * Reads the devices from the database (once, before use). sharedDatabase: replicas of a lab
   * write it too, so a token unknown here is looked up there (accept).
   */
  async load(options: { sharedDatabase?: boolean } = {}): Promise<this> {
    this.sharedDatabase = options.sharedDatabase ?? false;
    for (const d of await this.store.all()) this.remember(d);
    return this;
  }

  /**
   * A device made on another replica of the lab after this one loaded (its live event names it):
   * read from the database, so that its pings are taken here too. True when it is known now.
   */
  async loadOne(id: string): Promise<boolean> {
    if (this.byId.has(id)) return true;
    const d = await this.store.get(id);
    if (d && !this.byId.has(id)) this.remember(d);
    return this.byId.has(id);
  }

  start(): void {
    const every = (ms: number, fn: () => void) => { const t = setInterval(fn, ms); t.unref(); this.timers.push(t); };
    every(this.options.flushMs, () => void this.flush());
    every(this.options.seenMs, () => this.emitSeen());
    every(TRIM_EVERY_MS, () => void this.trim());
    this.startTicks();
  }

  /**
   * The late/down clock apart from the ping flush: in a scaled-out lab only the leader runs it
   * (each replica still writes the pings it receives), so a transition is judged once.
   */
  startTicks(): void {
    if (this.tickTimer) return;
    this.tickTimer = setInterval(() => this.tick(), this.options.tickMs);
    this.tickTimer.unref();
  }

  stopTicks(): void {
    clearInterval(this.tickTimer);
    this.tickTimer = undefined;
  }

  async stop(): Promise<void> {
    this.stopTicks();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.flush();
  }

  list(): DeviceView[] {
    return [...this.byId.values()].sort((a, b) => a.name.localeCompare(b.name)).map(deviceView);
  }

  get size(): number {
    return this.byId.size;
  }

  /** A device by id or exact name; unknown -> 404. */
  resolve(ref: string): DeviceRecord {
    const found = this.byId.get(ref) ?? [...this.byId.values()].find((d) => d.name === ref);
    if (!found) throw new ApiError(404, ErrorCode.notFound, `no device "${ref}" (give its name or its id)`);
    return found;
  }

  async detail(id: string, now = Date.now()): Promise<DeviceDetailView> {
    await this.flush();
    const d = this.resolve(id);
    const uptime = async (windowMs: number) => {
      const from = now - windowMs;
      const { before, changes } = await this.store.transitionsSince(d.id, from);
      return uptimePercent(before ?? 'new', changes, Math.max(from, d.createdAt), now);
    };
    return {
      ...deviceView(d), last_body: d.lastBody, uptime_24h: await uptime(DAY_MS), uptime_7d: await uptime(7 * DAY_MS),
      transitions: await this.store.recentTransitions(d.id, 100),
    };
  }

  async pingHistory(id: string, limit: number, beforeId?: number) {
    await this.flush();
    return this.store.pings(this.resolve(id).id, limit, beforeId);
  }

  /** A new device and its token (shown once: only its hash is kept). */
  async create(input: DeviceInput, now = Date.now()): Promise<{ device: DeviceView; token: string }> {
    await this.assertNameFree(input.name);
    const token = newSecret(DEVICE_TOKEN_PREFIX);
    const d: DeviceRecord = {
      id: crypto.randomUUID(), name: input.name, labels: input.labels ?? {}, nodeId: input.nodeId ?? null,
      periodS: input.periodS ?? DEFAULT_PERIOD_S, graceS: input.graceS ?? DEFAULT_GRACE_S, tokenHash: sha256Hex(token),
      status: 'new', statusSince: now, lastSeen: null, lastStatus: null, lastMessage: null, lastBody: null, firmware: null, demo: null,
      numbers: {}, runStartedAt: null, windowFrom: null, pingCount: 0, createdAt: now,
    };
    await this.store.insert(d);
    this.store.afterCommit(() => this.applyDevice(d));
    return { device: deviceView(d), token };
  }

  async update(id: string, input: Partial<DeviceInput>): Promise<DeviceView> {
    const d = this.resolve(id);
    if (input.name !== undefined && input.name !== d.name) await this.assertNameFree(input.name, d.id);
    const next: DeviceRecord = {
      ...d, name: input.name ?? d.name, labels: input.labels ?? d.labels, nodeId: input.nodeId === undefined ? d.nodeId : input.nodeId,
      periodS: input.periodS ?? d.periodS, graceS: input.graceS ?? d.graceS,
    };
    await this.store.updateSettings(next);
    this.store.afterCommit(() => this.applyDevice(next));
    return deviceView(next);
  }

  /** Paused: no late or down until a ping or a resume. */
  pause(id: string, now = Date.now()): Promise<DeviceView> {
    return this.setStatusNow(this.resolve(id), 'paused', now, 'paused');
  }

  /** Back to new: watched again from its next ping. */
  async resume(id: string, now = Date.now()): Promise<DeviceView> {
    const d = this.resolve(id);
    if (d.status !== 'paused') return deviceView(d);
    return this.setStatusNow(d, 'new', now, 'resumed: waiting for a ping', { windowFrom: null });
  }

  /** A new token; the old one stops working. */
  async rotateToken(id: string): Promise<{ device: DeviceView; token: string }> {
    const d = this.resolve(id);
    const token = newSecret(DEVICE_TOKEN_PREFIX);
    const tokenHash = sha256Hex(token);
    await this.store.setTokenHash(d.id, tokenHash);
    this.store.afterCommit(() => {
      this.applyToken(d.id, tokenHash);
      // Heard by the other replicas (no hash in it): they forget the token they know (applyRemote).
      this.emit('updated', deviceView(d));
    });
    return { device: deviceView(d), token };
  }

  async remove(id: string): Promise<void> {
    const d = this.resolve(id);
    await this.store.remove(d.id);
    this.store.afterCommit(() => this.applyRemoval(d.id));
  }

  /**
   * A device created or its settings changed (here or on another replica): memory takes its
   * settings (its live state stays as this replica knows it); listeners hear it.
   */
  applyDevice(device: DeviceRecord): void {
    const known = this.byId.get(device.id);
    if (known) {
      Object.assign(known, { name: device.name, labels: device.labels, nodeId: device.nodeId, periodS: device.periodS, graceS: device.graceS });
    } else {
      this.remember(device);
    }
    this.emit('updated', deviceView(known ?? device));
  }

  /** A device's new token hash (here or on another replica): the old token stops working. */
  applyToken(id: string, tokenHash: string): void {
    const d = this.byId.get(id);
    if (!d) return;
    this.forgetToken(d);
    d.tokenHash = tokenHash;
    this.byToken.set(tokenHash, d);
  }

  /** A device removed (here or on another replica). */
  applyRemoval(id: string): void {
    const d = this.byId.get(id);
    if (!d) return;
    this.byId.delete(d.id);
    this.forgetToken(d);
    this.forgetWrites(d);
    this.seen.delete(d.id);
    this.emit('removed', d.id);
  }

  /** A device's status changed (here or on another replica): memory follows, listeners hear it. */
  applyStatus(id: string, change: { status: DeviceStatus; at: number; reason: string; windowFrom?: number | null }): void {
    const d = this.byId.get(id);
    if (!d) return;
    d.status = change.status;
    d.statusSince = change.at;
    if (change.windowFrom !== undefined) d.windowFrom = change.windowFrom;
    this.emit('status', { device_id: d.id, status: change.status, since: change.at, reason: change.reason, window_from: d.windowFrom, device: deviceView(d) });
  }

  /**
   * The hot path: a ping from the device whose token hashes to this. False when no device has it.
   * Queued for the next flush; a status change is emitted at once.
   */
  ping(tokenHash: string, p: Ping, now = Date.now()): boolean {
    const d = this.byToken.get(tokenHash);
    if (!d) return false;
    let durationMs: number | null = null;
    if (p.kind === 'start') d.runStartedAt = now;
    if (p.kind === 'ok' || p.kind === 'fail') {
      if (d.runStartedAt !== null) durationMs = now - d.runStartedAt;
      d.runStartedAt = null;
      d.windowFrom = now;
    }
    const next = statusAfterPing(d.status, p.kind);
    if (next !== d.status) this.transition(d, next, now, p.kind === 'ok' ? `${p.source} received` : p.reason ?? 'failure reported');
    d.lastSeen = now;
    d.lastStatus = p.status;
    if (p.message !== null) d.lastMessage = p.message;
    if (p.body !== null) d.lastBody = p.body;
    if (p.firmware !== undefined) d.firmware = p.firmware;
    if (p.demo !== undefined) d.demo = p.demo;
    if (Object.keys(p.numbers).length) {
      d.numbers = p.numbers;
      this.emit('numbers', { device_id: d.id, at: now, numbers: p.numbers });
    }
    d.pingCount++;
    const queued: NewPing = { device_id: d.id, at: now, kind: p.kind, source: p.source, status: p.status, message: p.message, body: p.body, numbers: p.numbers, logs: p.logs, duration_ms: durationMs };
    this.pings.push(queued);
    this.pendingBytes += pingBytes(queued);
    if (this.pendingBytes > this.options.maxPendingBytes) this.dropOldest();
    this.pinged.set(d, (this.pinged.get(d) ?? 0) + 1);
    this.seen.add(d.id);
    if (this.pings.length === FLUSH_AT) setImmediate(() => this.flush());
    return true;
  }

  /**
   * A ping whose token may be new to this replica: another replica of the lab may have made the
   * device or regenerated its token (no event carries a hash). On a miss the database decides;
   * a single server knows every token, so a scanner's random tokens never reach its database.
   */
  async accept(tokenHash: string, p: Ping, now = Date.now()): Promise<boolean> {
    if (this.ping(tokenHash, p, now)) return true;
    return this.sharedDatabase && (await this.loadByToken(tokenHash)) && this.ping(tokenHash, p, now);
  }

  /**
   * Another replica's change of a device (cluster/remote-state.ts): it wrote the database, so this
   * is memory only. Status changes and removals are told to listeners (the alert engine). Devices
   * unknown here (their token hash is not in a view) are skipped: false. A `device.updated` may
   * be a regenerated token: the one known here is forgotten at once, and the next ping's token is
   * looked up in the database (accept), so the old one is refused and the new one taken.
   */
  applyRemote(message: DeviceStatusLiveMessage | DeviceUpdatedLiveMessage | DeviceRemovedLiveMessage | DevicesSeenLiveMessage): boolean {
    if (message.type === 'devices.seen') {
      let known = true;
      for (const seen of message.data.devices) {
        const d = this.byId.get(seen.device_id);
        if (!d) known = false;
        // Pings of one device may reach two replicas: an older sighting does not undo a newer one.
        else if (d.lastSeen === null || seen.last_seen >= d.lastSeen) applySeen(d, seen);
      }
      return known;
    }
    const d = this.byId.get(message.type === 'device.updated' ? message.data.device.id : message.data.device_id);
    if (!d) return false;
    if (message.type === 'device.removed') {
      this.byId.delete(d.id);
      this.forgetToken(d);
      this.forgetWrites(d);
      this.emit('removed', d.id);
      return true;
    }
    const view: DeviceView | undefined = message.data.device;
    if (view) {
      Object.assign(d, {
        name: view.name, labels: view.labels, nodeId: view.node_id, periodS: view.period_s, graceS: view.grace_s, status: view.status, statusSince: view.status_since,
      });
      // The other replica's copy of the ping fields may be older than this one's (it took no ping since).
      if (view.last_seen !== null && (d.lastSeen === null || view.last_seen >= d.lastSeen)) {
        Object.assign(d, {
          lastSeen: view.last_seen, lastStatus: view.last_status, lastMessage: view.last_message, firmware: view.firmware, demo: view.demo, numbers: view.numbers,
          runStartedAt: view.run_started_at, pingCount: view.ping_count,
        });
      }
    }
    if (message.type === 'device.status') {
      Object.assign(d, { status: message.data.status, statusSince: message.data.since, windowFrom: laterWindow(d.windowFrom, message.data.window_from) });
      this.emit('status', message.data);
    }
    if (message.type === 'device.updated') this.forgetToken(d);
    return true;
  }

  private forgetToken(d: DeviceRecord): void {
    if (this.byToken.get(d.tokenHash) === d) this.byToken.delete(d.tokenHash);
    this.tokensForgotten++;
  }

  /**
   * The device this token is given to in the database, into memory; false when none is. A token
   * forgotten during the read (the event of the change that answer may predate) means reading again.
   */
  private async loadByToken(tokenHash: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_TOKEN_READS; attempt++) {
      const forgotten = this.tokensForgotten;
      const d = await this.store.byTokenHash(tokenHash);
      if (forgotten !== this.tokensForgotten) continue;
      if (!d) return false;
      if (this.byId.has(d.id)) this.applyToken(d.id, d.tokenHash);
      else this.remember(d);
      return true;
    }
    return false;
  }

  /** Looks for devices whose period or grace has passed: late, then down, each at the moment it was due. */
  tick(now = Date.now()): void {
    for (const d of this.byId.values()) {
      for (const t of dueTransitions(d, now)) this.transition(d, t.to, t.at, t.reason);
    }
  }

  /**
   * Writes the queued pings, states and status changes in one transaction; kept for later if the
   * disk refuses (a failure is reported; a test's writeNow rethrows it). One flush at a time.
   */
  flush(): Promise<void> {
    const flush = this.flushing.then(() => this.writeQueued());
    this.flushing = flush.catch(() => undefined);
    return flush;
  }

  private async writeQueued(): Promise<void> {
    if (!this.pings.length && !this.pinged.size && !this.judged.size && !this.transitions.length) return;
    // Taken out of the queues: pings that come while it is written wait for the next flush.
    const taken = { pings: this.pings, bytes: this.pendingBytes, transitions: this.transitions, pinged: [...this.pinged], judged: [...this.judged] };
    this.pings = [];
    this.pendingBytes = 0;
    this.transitions = [];
    this.pinged.clear();
    this.judged.clear();
    const known = (id: string) => this.byId.has(id);
    const pings = taken.pings.filter((p) => known(p.device_id));
    const transitions = taken.transitions.filter((t) => known(t.device_id));
    const pinged: PingedDevice[] = taken.pinged.filter(([d]) => known(d.id)).map(([device, newPings]) => ({ device, newPings }));
    try {
      await this.store.writeBatch(pings, { pinged, judged: taken.judged.filter((d) => known(d.id)) }, transitions);
    } catch (err) {
      this.pings = [...taken.pings, ...this.pings];
      this.pendingBytes += taken.bytes;
      this.transitions = [...taken.transitions, ...this.transitions];
      for (const { device, newPings } of pinged) this.pinged.set(device, (this.pinged.get(device) ?? 0) + newPings);
      for (const d of taken.judged) if (known(d.id)) this.judged.add(d);
      this.dropOldest();
      this.writes.report(err, 'writing device pings');
      return;
    }
    for (const p of pings) this.untrimmed.add(p.device_id);
    this.emit('flushed', pings.length);
  }

  /** Keeps the unwritten queues within their caps (count and bytes), giving up the oldest. */
  private dropOldest(): void {
    let drop = Math.max(0, this.pings.length - this.options.maxPending);
    let bytes = this.pendingBytes;
    for (let i = 0; i < drop; i++) bytes -= pingBytes(this.pings[i]!);
    while (bytes > this.options.maxPendingBytes && drop < this.pings.length) bytes -= pingBytes(this.pings[drop++]!);
    if (drop) {
      this.pings.splice(0, drop);
      this.pendingBytes = bytes;
      this.dropped += drop;
    }
    const overTransitions = this.transitions.length - this.options.maxPendingTransitions;
    if (overTransitions > 0) {
      this.transitions.splice(0, overTransitions);
      this.droppedTransitions += overTransitions;
    }
  }

  private async trim(now = Date.now()): Promise<void> {
    if (!this.untrimmed.size) return;
    const ids = [...this.untrimmed];
    this.untrimmed.clear();
    try {
      await this.store.trim(ids, this.options.keepPings, now - 8 * DAY_MS);
    } catch (err) {
      for (const id of ids) this.untrimmed.add(id);
      this.writes.report(err, 'trimming device pings');
    }
  }

  private emitSeen(): void {
    if (!this.seen.size) return;
    const items: SeenItem[] = [];
    for (const id of this.seen) {
      const d = this.byId.get(id);
      if (d?.lastSeen) {
        items.push({
          device_id: id, last_seen: d.lastSeen, last_status: d.lastStatus, last_message: d.lastMessage, numbers: d.numbers, ping_count: d.pingCount,
          window_from: d.windowFrom, run_started_at: d.runStartedAt,
        });
      }
    }
    this.seen.clear();
    this.emit('seen', items);
  }

  private transition(d: DeviceRecord, to: DeviceStatus, at: number, reason: string): void {
    this.transitions.push({ device_id: d.id, at, from: d.status, to, reason });
    if (this.transitions.length > this.options.maxPendingTransitions) this.dropOldest();
    this.judged.add(d);
    this.applyStatus(d.id, { status: to, at, reason });
  }

  /**
   * A status change asked for by a user: written now, in the caller's transaction, with its
   * transition; memory follows once it commits. Not after a flush: a flush waiting for the
   * caller's transaction would wait forever. Status changes queued before it carry earlier times.
   */
  private async setStatusNow(d: DeviceRecord, to: DeviceStatus, now: number, reason: string, extra: Pick<Partial<DeviceRecord>, 'windowFrom'> = {}): Promise<DeviceView> {
    if (d.status === to) return deviceView(d);
    const next: DeviceRecord = { ...d, ...extra, status: to, statusSince: now };
    await this.store.writeBatch([], { judged: [next] }, [{ device_id: d.id, at: now, from: d.status, to, reason }]);
    // A flush that read the device before this commit writes an older status_since: the row keeps the newer one.
    this.store.afterCommit(() => this.applyStatus(d.id, { status: to, at: now, reason, ...extra }));
    return deviceView(next);
  }

  private forgetWrites(d: DeviceRecord): void {
    this.pinged.delete(d);
    this.judged.delete(d);
  }

  private remember(d: DeviceRecord): void {
    this.byId.set(d.id, d);
    this.byToken.set(d.tokenHash, d);
  }

  private async assertNameFree(name: string, exceptId?: string): Promise<void> {
    if (await this.store.nameTaken(name, exceptId)) throw new ApiError(409, ErrorCode.conflict, `a device named "${name}" already exists`);
  }
}

/** Another replica's sighting of a device (devices.seen): its ping fields, and the window the leader judges late and down from. */
function applySeen(d: DeviceRecord, seen: SeenItem): void {
  Object.assign(d, { lastSeen: seen.last_seen, lastStatus: seen.last_status, lastMessage: seen.last_message, numbers: seen.numbers, pingCount: seen.ping_count });
  d.windowFrom = laterWindow(d.windowFrom, seen.window_from);
  if (seen.run_started_at !== undefined) d.runStartedAt = seen.run_started_at;
}

/**
 * The window after another replica's word on it: absent (an older replica) keeps ours; null (a
 * resume) clears it; otherwise the later of the two, as events of two replicas may cross.
 */
function laterWindow(current: number | null, told: number | null | undefined): number | null {
  if (told === undefined) return current;
  if (told === null || current === null) return told;
  return Math.max(current, told);
}
