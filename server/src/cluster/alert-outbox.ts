import type { AlertEngine, Notification } from '../alerts/alert-engine.js';
import type { Sql } from '../db/sql.js';
import type { LeaderOutbox } from './leader-outbox.js';

/** How the engine tells a notification on one server: the alerts plugin's `notify` (to the notifier); whether its deliveries were stored. */
export type Tell = (n: Notification) => void | Promise<boolean>;

/**
 * One notification of one alert: what it says (firing, resolved, flapping; a repeat by the time
 * it was due), of which rule and subject, since when. A leader taking over rebuilds the firing
 * alerts from the database (same ids and start times): what it would tell again has the same key.
 */
export function alertNotificationKey(n: Notification): string {
  const repeat = n.kind === 'repeat' ? `|${n.alert.notified_at ?? ''}` : '';
  return `alert|${n.kind}|${n.rule.id}|${n.key}|${n.alert.started_at}${repeat}`;
}

/**
 * The outbox's deliver for alert notifications: each entry told as the engine would have told it;
 * settled once its deliveries are stored (pending deliveries are resumed after a handover), not
 * when it joined the notifier's group in memory.
 */
export function tellFromOutbox(tell: Tell): (payload: string) => Promise<boolean | void> {
  return async (payload) => tell(JSON.parse(payload) as Notification);
}

/**
 * The engine's notifications go through the leader's outbox instead of straight to `tell`: each is
 * recorded in the transaction that stores the alert change deciding it (LeaderOutbox.addIn, fenced
 * by the lease), so an alert is never stored as notified without its entry; the relay, delivering
 * with tellFromOutbox(tell), tells them after commit. A replica that is not (or no longer) the
 * leader records nothing: its transaction fails, and the leader's engine judges the same event.
 * Returns the function that unbinds it (and tells directly again).
 */
export function notifyThroughOutbox(
  engine: Pick<AlertEngine, 'on' | 'off' | 'recordNotificationsWith'>, outbox: Pick<LeaderOutbox, 'addIn'>, tell: Tell, sql: Pick<Sql, 'get' | 'run' | 'afterCommit'>,
): () => void {
  engine.off('notify', tell);
  engine.recordNotificationsWith(async (n) => { await outbox.addIn(sql, alertNotificationKey(n), JSON.stringify(n)); });
  return () => {
    engine.recordNotificationsWith(null);
    engine.on('notify', tell);
  };
}
