import type { Alert, AlertMute } from '@dvic/protocol';
import type { Db } from '../db/database.js';

/** Resolved alerts kept (the newest); firing ones are always kept. */
const KEEP_RESOLVED = 10_000;

/** Alerts (firing and history) and mutes (migration 0013). */
export class AlertsRepository {
  constructor(private readonly db: Db) {}

  firing(): { alert: Alert; key: string }[] {
    const rows = this.db.prepare("SELECT body, key FROM alerts WHERE state = 'firing'").all() as { body: string; key: string }[];
    return rows.map((r) => ({ alert: JSON.parse(r.body) as Alert, key: r.key }));
  }

  list(filter: { state?: Alert['state']; ruleId?: string; limit: number }): Alert[] {
    const where = [filter.state ? 'state = @state' : '', filter.ruleId ? 'rule_id = @ruleId' : ''].filter(Boolean);
    const rows = this.db.prepare(`SELECT body FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY started_at DESC, rowid DESC LIMIT @limit`).all(filter) as { body: string }[];
    return rows.map((r) => JSON.parse(r.body) as Alert);
  }

  get(id: string): Alert | undefined {
    const row = this.db.prepare('SELECT body FROM alerts WHERE id = ?').get(id) as { body: string } | undefined;
    return row && (JSON.parse(row.body) as Alert);
  }

  save(alert: Alert, key: string): void {
    this.db.prepare(`INSERT INTO alerts (id, rule_id, key, state, body, started_at, resolved_at) VALUES (@id, @rule_id, @key, @state, @body, @started_at, @resolved_at)
      ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body, resolved_at = excluded.resolved_at`)
      .run({ id: alert.id, rule_id: alert.rule_id, key, state: alert.state, body: JSON.stringify(alert), started_at: alert.started_at, resolved_at: alert.resolved_at });
  }

  trimResolved(): void {
    this.db.prepare(`DELETE FROM alerts WHERE state = 'resolved' AND id NOT IN
      (SELECT id FROM alerts WHERE state = 'resolved' ORDER BY started_at DESC LIMIT ${KEEP_RESOLVED})`).run();
  }

  /** Mutes that have not ended. */
  mutes(now: number): AlertMute[] {
    return this.db.prepare('SELECT * FROM alert_mutes WHERE ends_at > ? ORDER BY starts_at').all(now) as AlertMute[];
  }

  addMute(m: AlertMute): void {
    this.db.prepare(`INSERT INTO alert_mutes (id, node_id, demo, device_id, rule_id, starts_at, ends_at, reason, created_by, created_at)
      VALUES (@id, @node_id, @demo, @device_id, @rule_id, @starts_at, @ends_at, @reason, @created_by, @created_at)`).run(m);
  }

  deleteMute(id: string): boolean {
    return this.db.prepare('DELETE FROM alert_mutes WHERE id = ?').run(id).changes > 0;
  }
}
