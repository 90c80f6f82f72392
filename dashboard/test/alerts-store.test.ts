import { describe, expect, it } from 'vitest';
import type { Alert, LiveMessage } from '@dvic/protocol/shared';
import { alertHistory, applyAlertLive, badgeCount, emptyAlerts, firingAlerts, withAlerts } from '../src/state/alerts-store.js';

const alert = (id: string, over: Partial<Alert> = {}): Alert => ({
  id, rule_id: 'r1', rule_name: 'Demo crashed', kind: 'demo_crashed', severity: 'critical', state: 'firing', summary: `${id} crashed`, value: null,
  subject: { type: 'demo', node_id: 'n', node_name: 'pi', demo: id, device_id: null, device_name: null }, last_lines: [],
  started_at: 1, resolved_at: null, flapping: false, muted: false, acked_at: null, acked_by: null, notified_at: 1, ...over,
});
const updated = (a: Alert): LiveMessage => ({ type: 'alert.updated', data: { alert: a } });

describe('alerts store', () => {
  it('applies alert.updated in order over the fetched list, and ignores other messages', () => {
    const s0 = withAlerts(emptyAlerts(), [alert('a'), alert('b', { severity: 'warning', started_at: 5 })]);
    expect(applyAlertLive(s0, [{ type: 'demo.removed', data: { ids: [] } }])).toBe(s0);
    const s1 = applyAlertLive(s0, [updated(alert('c', { started_at: 9 })), updated(alert('a', { state: 'resolved', resolved_at: 10 }))]);
    expect(firingAlerts(s1).map((a) => a.id)).toEqual(['c', 'b']);
    expect(alertHistory(s1).map((a) => a.id)).toEqual(['a']);
    expect(alertHistory(s1, 'other')).toEqual([]);
    expect(s1.version).toBe(s0.version + 1);
  });

  it('the badge counts firing alerts that are neither muted nor acknowledged', () => {
    const s = withAlerts(emptyAlerts(), [alert('a'), alert('b', { muted: true }), alert('c', { acked_at: 3, acked_by: 'x' }), alert('d', { state: 'resolved' })]);
    expect(badgeCount(s)).toBe(1);
  });
});
