import type { DevicePingView } from '@dvic/protocol';
import type { Sql, SqlValue } from '../db/sql.js';
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

/** A device whose pings this replica took since the last write: its ping fields, and how many pings its count grows by. */
export interface PingedDevice {
  device: DeviceRecord;
  newPings: number;
}

/** What one batch writes of the devices' rows: the ping fields of those pinged here, the status of those whose status changed here. */
export interface DeviceStates {
  pinged?: PingedDevice[];
  judged?: DeviceRecord[];
}

/** A status change to store. */
export type DeviceTransition = Transition & { device_id: string };

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

const INSERT_PING = `
  INSERT INTO device_pings (device_id, at, kind, source, status, message, body, numbers, logs, duration_ms)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
/*
 * A device's row is written by two replicas in a scaled-out lab: the one that took its pings writes
 * the ping fields, the one that changed its status (the leader judging late and down, the one whose
 * ping or user action changed it) writes the status. Neither writes the other's columns from its
 * own, older copy; and of two writes the newer one wins (pings of one device may reach two replicas).
 */
const UPDATE_PING_FIELDS = `
  UPDATE devices SET last_seen = ?, last_status = ?, last_message = ?, last_body = ?, firmware = ?, demo = ?, numbers = ?, run_started_at = ?,
    window_from = ?
  WHERE id = ? AND (last_seen IS NULL OR last_seen <= ?)`;
const ADD_PINGS = 'UPDATE devices SET ping_count = ping_count + ? WHERE id = ?';
const UPDATE_STATUS = 'UPDATE devices SET status = ?, status_since = ? WHERE id = ? AND status_since <= ?';
const INSERT_TRANSITION = 'INSERT INTO device_transitions (device_id, at, from_status, to_status, reason) VALUES (?, ?, ?, ?, ?)';
const TRANSITION_COLUMNS = 'at, from_status AS "from", to_status AS "to", reason';

const pingParams = (p: NewPing): SqlValue[] => [
  p.device_id, p.at, p.kind, p.source, p.status, p.message, p.body, JSON.stringify(p.numbers), p.logs.length ? JSON.stringify(p.logs) : null, p.duration_ms,
];
const pingFieldParams = (d: DeviceRecord): SqlValue[] => [
  d.lastSeen, d.lastStatus, d.lastMessage, d.lastBody, d.firmware, d.demo, JSON.stringify(d.numbers), d.runStartedAt, d.windowFrom, d.id, d.lastSeen,
];
const statusParams = (d: DeviceRecord): SqlValue[] => [d.status, d.statusSince, d.id, d.statusSince];
const transitionParams = (t: DeviceTransition): SqlValue[] => [t.device_id, t.at, t.from, t.to, t.reason];

/** The devices, their pings (capped per device) and status changes. */
export class DevicesRepository {
  constructor(private readonly sql: Sql) {}

  /** Runs fn once the current transaction (if any) has committed: memory follows the database. */
  afterCommit(fn: () => void): void {
    this.sql.afterCommit(fn);
  }

  async all(): Promise<DeviceRecord[]> {
    return (await this.sql.all<DeviceRow>('SELECT * FROM devices ORDER BY name')).map(toRecord);
  }

  async get(id: string): Promise<DeviceRecord | undefined> {
    const row = await this.sql.get<DeviceRow>('SELECT * FROM devices WHERE id = ?', [id]);
    return row && toRecord(row);
  }

  /** The device this token hash is given to now (token_hash is unique and indexed). */
  async byTokenHash(tokenHash: string): Promise<DeviceRecord | undefined> {
    const row = await this.sql.get<DeviceRow>('SELECT * FROM devices WHERE token_hash = ?', [tokenHash]);
    return row && toRecord(row);
  }

  async insert(d: DeviceRecord): Promise<void> {
    await this.sql.run(`
      INSERT INTO devices (id, name, labels, node_id, period_s, grace_s, token_hash, status, status_since, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [d.id, d.name, JSON.stringify(d.labels), d.nodeId, d.periodS, d.graceS, d.tokenHash, d.status, d.statusSince, d.createdAt]);
  }

  /** Name, labels, node, period and grace. */
  async updateSettings(d: DeviceRecord): Promise<void> {
    await this.sql.run('UPDATE devices SET name = ?, labels = ?, node_id = ?, period_s = ?, grace_s = ? WHERE id = ?',
      [d.name, JSON.stringify(d.labels), d.nodeId, d.periodS, d.graceS, d.id]);
  }

  async setTokenHash(id: string, tokenHash: string): Promise<void> {
    await this.sql.run('UPDATE devices SET token_hash = ? WHERE id = ?', [tokenHash, id]);
  }

  async remove(id: string): Promise<void> {
    await this.sql.run('DELETE FROM devices WHERE id = ?', [id]);
  }

  async nameTaken(name: string, exceptId = ''): Promise<boolean> {
    return (await this.sql.get('SELECT 1 FROM devices WHERE name = ? AND id != ?', [name, exceptId])) !== undefined;
  }

  /** One batch in one transaction: new pings, the devices' latest state (only the columns this replica owns), their status changes. */
  async writeBatch(pings: NewPing[], states: DeviceStates, transitions: DeviceTransition[]): Promise<void> {
    // Rows are locked in device id order, whichever list touches them: replicas flushing the same
    // devices in other orders would otherwise deadlock (40P01) and requeue or drop their batches.
    const pinged = [...(states.pinged ?? [])].sort((a, b) => byId(a.device, b.device));
    const judged = [...(states.judged ?? [])].sort(byId);
    await this.sql.transaction(async () => {
      if (this.sql.dialect === 'postgres' && pinged.length && judged.length) await this.lockInIdOrder([...pinged.map((p) => p.device), ...judged]);
      if (pings.length) await this.sql.runMany(INSERT_PING, pings.map(pingParams));
      if (pinged.length) {
        await this.sql.runMany(UPDATE_PING_FIELDS, pinged.map((p) => pingFieldParams(p.device)));
        await this.sql.runMany(ADD_PINGS, pinged.filter((p) => p.newPings > 0).map((p) => [p.newPings, p.device.id]));
      }
      if (judged.length) await this.sql.runMany(UPDATE_STATUS, judged.map(statusParams));
      if (transitions.length) await this.sql.runMany(INSERT_TRANSITION, transitions.map(transitionParams));
    });
  }

  /** PostgreSQL: takes the row locks of both lists at once, in id order (each list alone is sorted already); COLLATE "C" is the order of JS sort. */
  private async lockInIdOrder(devices: DeviceRecord[]): Promise<void> {
    const ids = [...new Set(devices.map((d) => d.id))].sort();
    await this.sql.all('SELECT id FROM devices WHERE id IN (SELECT json_array_elements_text(?::json)) ORDER BY id COLLATE "C" FOR UPDATE', [JSON.stringify(ids)]);
  }

  /** A device's pings, newest first. */
  async pings(deviceId: string, limit: number, beforeId?: number): Promise<DevicePingView[]> {
    return (await this.sql.all<PingRow>('SELECT * FROM device_pings WHERE device_id = ? AND id < ? ORDER BY id DESC LIMIT ?',
      [deviceId, beforeId ?? Number.MAX_SAFE_INTEGER, limit])).map(toPing);
  }

  /** A device's status changes since `from` (oldest first), and the status it had at `from`. */
  async transitionsSince(deviceId: string, from: number): Promise<{ before: DeviceStatus | null; changes: Transition[] }> {
    const before = await this.sql.get<{ to_status: DeviceStatus }>(
      'SELECT to_status FROM device_transitions WHERE device_id = ? AND at <= ? ORDER BY at DESC, id DESC LIMIT 1', [deviceId, from]);
    const changes = await this.sql.all<Transition>(
      `SELECT ${TRANSITION_COLUMNS} FROM device_transitions WHERE device_id = ? AND at > ? ORDER BY at, id`, [deviceId, from]);
    return { before: before?.to_status ?? null, changes };
  }

  /** A device's latest status changes, newest first. */
  async recentTransitions(deviceId: string, limit: number): Promise<Transition[]> {
    return this.sql.all<Transition>(
      `SELECT ${TRANSITION_COLUMNS} FROM device_transitions WHERE device_id = ? ORDER BY at DESC, id DESC LIMIT ?`, [deviceId, limit]);
  }

  /** Keeps the newest `keep` pings of each given device and status changes newer than `since`. */
  async trim(deviceIds: string[], keep: number, since: number): Promise<void> {
    await this.sql.transaction(async () => {
      await this.sql.runMany(`
        DELETE FROM device_pings WHERE device_id = ? AND id < COALESCE(
          (SELECT id FROM device_pings WHERE device_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?), 0)`,
      deviceIds.map((id) => [id, id, keep - 1]));
      await this.sql.run('DELETE FROM device_transitions WHERE at < ?', [since]);
    });
  }

  async countPings(): Promise<number> {
    return Number((await this.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM device_pings'))!.n);
  }
}

function byId(a: DeviceRecord, b: DeviceRecord): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
