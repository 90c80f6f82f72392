import type { Alert, AlertMute } from '@dvic/protocol';
import type { Sql, SqlValue } from '../db/sql.js';

/** Resolved alerts kept (the newest); firing ones are always kept. */
const KEEP_RESOLVED = 10_000;

/** Alerts (firing and history) and mutes (migration 0014). */
export class AlertsRepository {
  constructor(private readonly sql: Sql) {}

  async firing(): Promise<{ alert: Alert; key: string }[]> {
    const rows = await this.sql.all<{ body: string; key: string }>("SELECT body, key FROM alerts WHERE state = 'firing'");
    return rows.map((r) => ({ alert: JSON.parse(r.body) as Alert, key: r.key }));
  }

  /** Newest first (alerts of the same millisecond in a stable order). */
  async list(filter: { state?: Alert['state']; ruleId?: string; limit: number }): Promise<Alert[]> {
    const conditions = ([['state = ?', filter.state], ['rule_id = ?', filter.ruleId]] as const).filter(([, value]) => value);
    const where = conditions.map(([text]) => text);
    const params: SqlValue[] = conditions.map(([, value]) => value!);
    const rows = await this.sql.all<{ body: string }>(`SELECT body FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY started_at DESC, id DESC LIMIT ?`, [...params, filter.limit]);
    return rows.map((r) => JSON.parse(r.body) as Alert);
  }

  async get(id: string): Promise<Alert | undefined> {
    const row = await this.sql.get<{ body: string }>('SELECT body FROM alerts WHERE id = ?', [id]);
    return row && (JSON.parse(row.body) as Alert);
  }

  /**
   * An alert as stored, to change it in the caller's transaction: on PostgreSQL its row stays locked
   * until that commits, so a change made meanwhile on another replica (an ack) is not overwritten.
   */
  async getForChange(id: string): Promise<{ alert: Alert; key: string } | undefined> {
    const lock = this.sql.dialect === 'postgres' ? ' FOR UPDATE' : '';
    const row = await this.sql.get<{ body: string; key: string }>(`SELECT body, key FROM alerts WHERE id = ?${lock}`, [id]);
    return row && { alert: JSON.parse(row.body) as Alert, key: row.key };
  }

  async save(alert: Alert, key: string): Promise<void> {
    await this.sql.run(`INSERT INTO alerts (id, rule_id, key, state, body, started_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body, resolved_at = excluded.resolved_at`,
    [alert.id, alert.rule_id, key, alert.state, JSON.stringify(alert), alert.started_at, alert.resolved_at]);
  }

  async trimResolved(): Promise<void> {
    await this.sql.run(`DELETE FROM alerts WHERE state = 'resolved' AND id NOT IN
      (SELECT id FROM alerts WHERE state = 'resolved' ORDER BY started_at DESC, id DESC LIMIT ${KEEP_RESOLVED})`);
  }

  /** Mutes that have not ended. */
  async mutes(now: number): Promise<AlertMute[]> {
    return this.sql.all<AlertMute>('SELECT * FROM alert_mutes WHERE ends_at > ? ORDER BY starts_at, id', [now]);
  }

  async addMute(m: AlertMute): Promise<void> {
    await this.sql.run(`INSERT INTO alert_mutes (id, node_id, demo, device_id, rule_id, starts_at, ends_at, reason, created_by, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [m.id, m.node_id, m.demo, m.device_id, m.rule_id, m.starts_at, m.ends_at, m.reason, m.created_by, m.created_at]);
  }

  async deleteMute(id: string): Promise<boolean> {
    return (await this.sql.run('DELETE FROM alert_mutes WHERE id = ?', [id])).changes > 0;
  }
}
