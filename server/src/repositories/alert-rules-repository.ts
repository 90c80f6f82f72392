import type { AlertRule } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';

interface RuleRow {
  id: string; name: string; kind: AlertRule['kind']; threshold: number | null; for_s: number; scope: string; severity: AlertRule['severity'];
  enabled: number; repeat_s: number | null; channels: string | null; builtin: number; created_at: number;
}

const toRule = (r: RuleRow): AlertRule => ({
  id: r.id, name: r.name, kind: r.kind, threshold: r.threshold, for_s: r.for_s, scope: JSON.parse(r.scope) as AlertRule['scope'],
  severity: r.severity, enabled: r.enabled === 1, repeat_s: r.repeat_s, channels: r.channels === null ? null : (JSON.parse(r.channels) as string[]),
  builtin: r.builtin === 1, created_at: r.created_at,
});

/** Alert rules (migration 0014). */
export class AlertRulesRepository {
  constructor(private readonly sql: Sql) {}

  async all(): Promise<AlertRule[]> {
    return (await this.sql.all<RuleRow>('SELECT * FROM alert_rules ORDER BY created_at, name')).map(toRule);
  }

  async save(rule: AlertRule): Promise<void> {
    await this.sql.run(`
      INSERT INTO alert_rules (id, name, kind, threshold, for_s, scope, severity, enabled, repeat_s, channels, builtin, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, threshold = excluded.threshold, for_s = excluded.for_s, scope = excluded.scope,
        severity = excluded.severity, enabled = excluded.enabled, repeat_s = excluded.repeat_s, channels = excluded.channels`, [
      rule.id, rule.name, rule.kind, rule.threshold, rule.for_s, JSON.stringify(rule.scope), rule.severity, rule.enabled ? 1 : 0,
      rule.repeat_s, rule.channels === null ? null : JSON.stringify(rule.channels), rule.builtin ? 1 : 0, rule.created_at,
    ]);
  }

  /** Whether the default rules are still to be seeded (a fresh install), and marks them seeded. */
  async takeDefaultsPending(): Promise<boolean> {
    return (await this.sql.run("UPDATE alert_settings SET value = 'seeded' WHERE key = 'default_rules' AND value = 'pending'")).changes > 0;
  }

  async delete(id: string): Promise<boolean> {
    return (await this.sql.run('DELETE FROM alert_rules WHERE id = ?', [id])).changes > 0;
  }
}
