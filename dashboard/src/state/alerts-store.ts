// Alerts as the dashboard shows them: the REST list, then alert.updated live messages in order.
import type { Alert, LiveMessage } from '@dvic/protocol/shared';

export interface AlertsState {
  byId: Map<string, Alert>;
  /** Bumped on every change, so views can memoise on it. */
  version: number;
  loaded: boolean;
}

export const emptyAlerts = (): AlertsState => ({ byId: new Map(), version: 0, loaded: false });

/** The fetched list replaces everything (after each (re)connection's snapshot). */
export function withAlerts(state: AlertsState, alerts: Alert[]): AlertsState {
  return { byId: new Map(alerts.map((a) => [a.id, a])), version: state.version + 1, loaded: true };
}

/** Applies the alert messages of a live batch; the same state when none concerned alerts. */
export function applyAlertLive(state: AlertsState, batch: LiveMessage[]): AlertsState {
  let byId: Map<string, Alert> | null = null;
  for (const m of batch) {
    if (m.type === 'alert.updated') (byId ??= new Map(state.byId)).set(m.data.alert.id, m.data.alert);
  }
  return byId ? { ...state, byId, version: state.version + 1 } : state;
}

const SEVERITY: Record<Alert['severity'], number> = { critical: 0, warning: 1, info: 2 };

/** Firing now: critical first, then the newest. */
export function firingAlerts(state: AlertsState): Alert[] {
  return [...state.byId.values()].filter((a) => a.state === 'firing')
    .sort((a, b) => SEVERITY[a.severity] - SEVERITY[b.severity] || b.started_at - a.started_at);
}

/** Resolved ones, newest first (of one rule when given). */
export function alertHistory(state: AlertsState, ruleId?: string): Alert[] {
  return [...state.byId.values()].filter((a) => a.state === 'resolved' && (!ruleId || a.rule_id === ruleId))
    .sort((a, b) => (b.resolved_at ?? 0) - (a.resolved_at ?? 0));
}

/** What the badge counts: firing alerts that are told (not muted), unacknowledged. */
export function badgeCount(state: AlertsState): number {
  return [...state.byId.values()].filter((a) => a.state === 'firing' && !a.muted && a.acked_at === null).length;
}
