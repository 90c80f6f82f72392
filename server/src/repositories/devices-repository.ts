import type { DevicePingView } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import type { DeviceStatus, Transition } from '../live/device-status.js';

/** A device as the registry keeps it in memory (and the database on disk). */
export interface DeviceRecord {
  id: string;
  name: string;
  labels: Record<string, string>;
  nodeId: string | null;
  periodS: number;
  graceS: number;
  tokenHash: string;
  status: DeviceStatus;
  statusSince: number;
  lastSeen: number | null;
  lastStatus: string | null;
  lastMessage: string | null;
  lastBody: string | null;
  firmware: string | null;
  demo: string | null;
  numbers: Record<string, number>;
  runStartedAt: number | null;
  windowFrom: number | null;
  pingCount: number;
  createdAt: number;
}

/** A ping to store: the view without its id. */
export type NewPing = Omit<DevicePingView, 'id'>;

interface DeviceRow {
  id: string; name: string; labels: string; node_id: string | null; period_s: number; grace_s: number; token_hash: string;
  status: DeviceStatus; status_since: number; last_seen: number | null; last_status: string | null; last_message: string | null;
  last_body: string | null; firmware: string | null; demo: string | null; numbers: string; run_started_at: number | null;
  window_from: number | null; ping_count: number; created_at: number;
}

interface PingRow {
  id: number; device_id: string; at: number; kind: DevicePingView['kind']; source: DevicePingView['source']; status: string | null;
  message: string | null; body: string | null; numbers: string | null; logs: string | null; duration_ms: number | null;
}

const toRecord = (r: DeviceRow): DeviceRecord => ({
  id: r.id, name: r.name, labels: JSON.parse(r.labels) as Record<string, string>, nodeId: r.node_id, periodS: r.period_s, graceS: r.grace_s,
  tokenHash: r.token_hash, status: r.status, statusSince: r.status_since, lastSeen: r.last_seen, lastStatus: r.last_status,
  lastMessage: r.last_message, lastBody: r.last_body, firmware: r.firmware, demo: r.demo, numbers: JSON.parse(r.numbers) as Record<string, number>,
  runStartedAt: r.run_started_at, windowFrom: r.window_from, pingCount: r.ping_count, createdAt: r.created_at,
});

const toPing = (r: PingRow): DevicePingView => ({
  id: r.id, device_id: r.device_id, at: r.at, kind: r.kind, source: r.source, status: r.status, message: r.message, body: r.body,
  numbers: r.numbers ? (JSON.parse(r.numbers) as Record<string, number>) : {}, logs: r.logs ? (JSON.parse(r.logs) as DevicePingView['logs']) : [],
  duration_ms: r.duration_ms,
});

const stateParams = (d: DeviceRecord) => ({
  id: d.id, status: d.status, status_since: d.statusSince, last_seen: d.lastSeen, last_status: d.lastStatus, last_message: d.lastMessage,
  last_body: d.lastBody, firmware: d.firmware, demo: d.demo, numbers: JSON.stringify(d.numbers), run_started_at: d.runStartedAt,
  window_from: d.windowFrom, ping_count: d.pingCount,
});

/** The devices, their pings (capped per device) and status changes. */
export class DevicesRepository {
  private readonly insertPing;
  private readonly updateState;
  private readonly insertTransition;

  constructor(private readonly db: Db) {
    this.insertPing = db.prepare(`
      INSERT INTO device_pings (device_id, at, kind, source, status, message, body, numbers, logs, duration_ms)
      VALUES (@device_id, @at, @kind, @source, @status, @message, @body, @numbers, @logs, @duration_ms)`);
    this.updateState = db.prepare(`
      UPDATE devices SET status = @status, status_since = @status_since, last_seen = @last_seen, last_status = @last_status,
        last_message = @last_message, last_body = @last_body, firmware = @firmware, demo = @demo, numbers = @numbers,
        run_started_at = @run_started_at, window_from = @window_from, ping_count = @ping_count
      WHERE id = @id`);
    this.insertTransition = db.prepare(`
      INSERT INTO device_transitions (device_id, at, from_status, to_status, reason) VALUES (@device_id, @at, @from, @to, @reason)`);
  }

  all(): DeviceRecord[] {
    return (this.db.prepare('SELECT * FROM devices ORDER BY name').all() as DeviceRow[]).map(toRecord);
  }

  insert(d: DeviceRecord): void {
    this.db.prepare(`
      INSERT INTO devices (id, name, labels, node_id, period_s, grace_s, token_hash, status, status_since, created_at)
      VALUES (@id, @name, @labels, @node_id, @period_s, @grace_s, @token_hash, @status, @status_since, @created_at)`)
      .run({ id: d.id, name: d.name, labels: JSON.stringify(d.labels), node_id: d.nodeId, period_s: d.periodS, grace_s: d.graceS,
        token_hash: d.tokenHash, status: d.status, status_since: d.statusSince, created_at: d.createdAt });
  }

  /** Name, labels, node, period and grace. */
  updateSettings(d: DeviceRecord): void {
    this.db.prepare('UPDATE devices SET name = @name, labels = @labels, node_id = @node_id, period_s = @period_s, grace_s = @grace_s WHERE id = @id')
      .run({ id: d.id, name: d.name, labels: JSON.stringify(d.labels), node_id: d.nodeId, period_s: d.periodS, grace_s: d.graceS });
  }

  setTokenHash(id: string, tokenHash: string): void {
    this.db.prepare('UPDATE devices SET token_hash = ? WHERE id = ?').run(tokenHash, id);
  }

  remove(id: string): void {
    this.db.prepare('DELETE FROM devices WHERE id = ?').run(id);
  }

  nameTaken(name: string, exceptId = ''): boolean {
    return this.db.prepare('SELECT 1 FROM devices WHERE name = ? AND id != ?').get(name, exceptId) !== undefined;
  }

  /** One batch in one transaction: new pings, the devices' latest state, their status changes. */
  writeBatch(pings: NewPing[], states: DeviceRecord[], transitions: (Transition & { device_id: string })[]): void {
    this.db.transaction(() => {
      for (const p of pings) {
        this.insertPing.run({ ...p, numbers: JSON.stringify(p.numbers), logs: p.logs.length ? JSON.stringify(p.logs) : null });
      }
      for (const d of states) this.updateState.run(stateParams(d));
      for (const t of transitions) this.insertTransition.run(t);
    })();
  }

  /** A device's pings, newest first. */
  pings(deviceId: string, limit: number, beforeId?: number): DevicePingView[] {
    return (this.db.prepare('SELECT * FROM device_pings WHERE device_id = ? AND id < ? ORDER BY id DESC LIMIT ?')
      .all(deviceId, beforeId ?? Number.MAX_SAFE_INTEGER, limit) as PingRow[]).map(toPing);
  }

  /** A device's status changes since `from` (oldest first), and the status it had at `from`. */
  transitionsSince(deviceId: string, from: number): { before: DeviceStatus | null; changes: Transition[] } {
    const before = this.db.prepare('SELECT to_status FROM device_transitions WHERE device_id = ? AND at <= ? ORDER BY at DESC, id DESC LIMIT 1')
      .get(deviceId, from) as { to_status: DeviceStatus } | undefined;
    const changes = this.db.prepare('SELECT at, from_status AS "from", to_status AS "to", reason FROM device_transitions WHERE device_id = ? AND at > ? ORDER BY at, id')
      .all(deviceId, from) as Transition[];
    return { before: before?.to_status ?? null, changes };
  }

  /** A device's latest status changes, newest first. */
  recentTransitions(deviceId: string, limit: number): Transition[] {
    return this.db.prepare('SELECT at, from_status AS "from", to_status AS "to", reason FROM device_transitions WHERE device_id = ? ORDER BY at DESC, id DESC LIMIT ?')
      .all(deviceId, limit) as Transition[];
  }

  /** Keeps the newest `keep` pings of each given device and status changes newer than `since`. */
  trim(deviceIds: string[], keep: number, since: number): void {
    const trimPings = this.db.prepare(`
      DELETE FROM device_pings WHERE device_id = @id AND id < COALESCE(
        (SELECT id FROM device_pings WHERE device_id = @id ORDER BY id DESC LIMIT 1 OFFSET @offset), 0)`);
    this.db.transaction(() => {
      for (const id of deviceIds) trimPings.run({ id, offset: keep - 1 });
      this.db.prepare('DELETE FROM device_transitions WHERE at < ?').run(since);
    })();
  }

  countPings(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM device_pings').get() as { n: number }).n;
  }
}
