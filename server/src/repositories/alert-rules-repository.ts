import type { AlertRule } from '@dvic/protocol';
import type { Db } from '../db/database.js';

interface RuleRow {
  id: string; name: string; kind: AlertRule['kind']; threshold: number | null; for_s: number; scope: string; severity: AlertRule['severity'];
  enabled: number; repeat_s: number | null; channels: string | null; builtin: number; created_at: number;
}

const toRule = (r: RuleRow): AlertRule => ({
  id: r.id, name: r.name, kind: r.kind, threshold: r.threshold, for_s: r.for_s, scope: JSON.parse(r.scope) as AlertRule['scope'],
  severity: r.severity, enabled: r.enabled === 1, repeat_s: r.repeat_s, channels: r.channels === null ? null : (JSON.parse(r.channels) as string[]),
  builtin: r.builtin === 1, created_at: r.created_at,
});

/** Alert rules (migration 0013). */
export class AlertRulesRepository {
  constructor(private readonly db: Db) {}

  all(): AlertRule[] {
    return (this.db.prepare('SELECT * FROM alert_rules ORDER BY created_at, name').all() as RuleRow[]).map(toRule);
  }

  save(rule: AlertRule): void {
    this.db.prepare(`
      INSERT INTO alert_rules (id, name, kind, threshold, for_s, scope, severity, enabled, repeat_s, channels, builtin, created_at)
      VALUES (@id, @name, @kind, @threshold, @for_s, @scope, @severity, @enabled, @repeat_s, @channels, @builtin, @created_at)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, threshold = excluded.threshold, for_s = excluded.for_s, scope = excluded.scope,
        severity = excluded.severity, enabled = excluded.enabled, repeat_s = excluded.repeat_s, channels = excluded.channels`).run({
      ...rule, scope: JSON.stringify(rule.scope), enabled: rule.enabled ? 1 : 0, builtin: rule.builtin ? 1 : 0,
      channels: rule.channels === null ? null : JSON.stringify(rule.channels),
    });
  }

  /** Whether the default rules are still to be seeded (a fresh install), and marks them seeded. */
  takeDefaultsPending(): boolean {
    return this.db.prepare("UPDATE alert_settings SET value = 'seeded' WHERE key = 'default_rules' AND value = 'pending'").run().changes > 0;
  }

  delete(id: string): boolean {
    return this.db.prepare('DELETE FROM alert_rules WHERE id = ?').run(id).changes > 0;
  }
}
