import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Alert, AlertMute } from '@dvic/protocol';
import { AlertsRepository } from '../../src/repositories/alerts-repository.js';
import { repositoryOn } from '../support/repository-on.js';
import { storeKinds } from '../support/stores.js';

const alert = (change: Partial<Alert> = {}): Alert => ({
  id: crypto.randomUUID(), rule_id: crypto.randomUUID(), rule_name: 'crashed', kind: 'demo_crashed', severity: 'critical',
  subject: { type: 'demo', node_id: 'n1', node_name: 'pi-1', demo: 'kiosk', device_id: null, device_name: null },
  state: 'firing', summary: 'kiosk crashed on pi-1', value: null, last_lines: ['ERROR boom'], started_at: 1_700_000_000_000, resolved_at: null,
  flapping: false, muted: false, acked_at: null, acked_by: null, notified_at: null, ...change,
});

const mute = (change: Partial<AlertMute> = {}): AlertMute => ({
  id: crypto.randomUUID(), node_id: 'n1', demo: null, device_id: null, rule_id: null, starts_at: 1000, ends_at: 5000, reason: 'maintenance',
  created_by: 'admin', created_at: 900, ...change,
});

describe.each(storeKinds)('alerts on $name', (kind) => {
  const under = repositoryOn(kind, (sql) => new AlertsRepository(sql));

  it('keeps an alert through its changes: firing, acknowledged, resolved', async () => {
    const fired = alert();
    await under.repository.save(fired, 'demo:n1:kiosk');
    expect(await under.repository.firing()).toEqual([{ alert: fired, key: 'demo:n1:kiosk' }]);
    const acked = { ...fired, acked_at: 1_700_000_000_500, acked_by: 'ops', notified_at: 1_700_000_000_100 };
    await under.repository.save(acked, 'demo:n1:kiosk');
    expect(await under.repository.get(fired.id)).toEqual(acked);
    const resolved = { ...acked, state: 'resolved' as const, resolved_at: 1_700_000_001_000 };
    await under.repository.save(resolved, 'demo:n1:kiosk');
    expect(await under.repository.firing()).toEqual([]);
    expect(await under.repository.get(fired.id)).toEqual(resolved);
    expect(await under.repository.get(crypto.randomUUID())).toBeUndefined();
  });

  it('refuses a second firing alert of the same rule and subject', async () => {
    const first = alert();
    await under.repository.save(first, 'node:n9');
    await expect(under.repository.save(alert({ rule_id: first.rule_id }), 'node:n9')).rejects.toThrow();
    await under.repository.save({ ...first, state: 'resolved', resolved_at: first.started_at + 1 }, 'node:n9');
    await under.repository.save(alert({ rule_id: first.rule_id }), 'node:n9');
  });

  it('lists newest first, by state and by rule, up to the limit', async () => {
    const ruleId = crypto.randomUUID();
    const old = alert({ rule_id: ruleId, started_at: 2_000_000_000_000, state: 'resolved', resolved_at: 2_000_000_000_001 });
    const recent = alert({ rule_id: ruleId, started_at: 2_000_000_000_100 });
    const other = alert({ started_at: 2_000_000_000_200 });
    await under.repository.save(old, 'a');
    await under.repository.save(recent, 'b');
    await under.repository.save(other, 'c');
    expect(await under.repository.list({ ruleId, limit: 10 })).toEqual([recent, old]);
    expect(await under.repository.list({ ruleId, state: 'resolved', limit: 10 })).toEqual([old]);
    expect(await under.repository.list({ limit: 2 })).toEqual([other, recent]);
    expect((await under.repository.list({ state: 'firing', limit: 100 })).every((a) => a.state === 'firing')).toBe(true);
  });

  it('trims the history to the newest 10,000 resolved alerts, never a firing one', async () => {
    const ruleId = crypto.randomUUID();
    const firing = alert({ rule_id: ruleId, started_at: 1 });
    await under.repository.save(firing, 'kept');
    const resolved = Array.from({ length: 10_003 }, (_, i) => alert({ rule_id: ruleId, state: 'resolved', started_at: 3_000_000_000_000 + i, resolved_at: 3_000_000_000_000 + i }));
    await under.store.sql.runMany('INSERT INTO alerts (id, rule_id, key, state, body, started_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      resolved.map((a) => [a.id, a.rule_id, `k${a.started_at}`, a.state, JSON.stringify(a), a.started_at, a.resolved_at]));
    await under.repository.trimResolved();
    const left = await under.repository.list({ ruleId, limit: 1000 });
    expect(left[0]).toEqual(resolved.at(-1));
    expect(await under.repository.get(firing.id)).toEqual(firing);
    const count = await under.store.sql.get<{ n: number }>("SELECT COUNT(*) AS n FROM alerts WHERE state = 'resolved'");
    expect(Number(count!.n)).toBe(10_000);
    // The oldest went (every other resolved alert of this suite is older still).
    expect(await under.repository.get(resolved[2]!.id)).toBeUndefined();
    expect(await under.repository.get(resolved[3]!.id)).toEqual(resolved[3]);
  });

  it('keeps mutes; those that ended are not answered; a mute is deleted once', async () => {
    const ended = mute({ ends_at: 1500 });
    const later = mute({ starts_at: 3000, ends_at: 9000, node_id: null, demo: 'kiosk', rule_id: crypto.randomUUID(), reason: null, created_by: null });
    const now = mute({ starts_at: 1000, ends_at: 5000 });
    for (const m of [ended, later, now]) await under.repository.addMute(m);
    expect(await under.repository.mutes(2000)).toEqual([now, later]);
    expect(await under.repository.deleteMute(now.id)).toBe(true);
    expect(await under.repository.deleteMute(now.id)).toBe(false);
    expect(await under.repository.mutes(2000)).toEqual([later]);
  });
});
