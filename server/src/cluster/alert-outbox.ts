import type { FastifyBaseLogger } from 'fastify';
import type { AlertEngine, Notification } from '../alerts/alert-engine.js';
import { NotLeaderError } from './leader-lease.js';
import type { LeaderOutbox } from './leader-outbox.js';

/** A database that did not answer is tried again (1 s, 2 s...): the engine will not tell it again. */
const RECORD_ATTEMPTS = 4;

/** How the engine tells a notification on one server: the alerts plugin's `notify` (to the notifier). */
export type Tell = (n: Notification) => void;

/**
 * One notification of one alert: what it says (firing, resolved, flapping; a repeat by the time
 * it was due), of which rule and subject, since when. A leader taking over rebuilds the firing
 * alerts from the database (same ids and start times): what it would tell again has the same key.
 */
export function alertNotificationKey(n: Notification): string {
  const repeat = n.kind === 'repeat' ? `|${n.alert.notified_at ?? ''}` : '';
  return `alert|${n.kind}|${n.rule.id}|${n.key}|${n.alert.started_at}${repeat}`;
}

/** The outbox's deliver for alert notifications: each entry told as the engine would have told it. */
export function tellFromOutbox(tell: Tell): (payload: string) => Promise<void> {
  return async (payload) => tell(JSON.parse(payload) as Notification);
}

/**
 * The engine's notifications go through the leader's outbox instead of straight to `tell` (the
 * relay, delivering with tellFromOutbox(tell), tells them after commit). A notification made by a
 * replica that is not (or no longer) the leader is not told: the leader's engine judges the same
 * event. Returns the function that unbinds it (and tells directly again).
 */
export function notifyThroughOutbox(engine: Pick<AlertEngine, 'on' | 'off'>, outbox: Pick<LeaderOutbox, 'add'>, tell: Tell, log: FastifyBaseLogger): () => void {
  const record = (n: Notification, attempt = 1): void => {
    outbox.add(alertNotificationKey(n), JSON.stringify(n)).catch((err: Error) => {
      if (err instanceof NotLeaderError) log.info({ alert: n.alert.id, kind: n.kind }, 'not the leader: the notification is the leader\'s to tell');
      else if (attempt < RECORD_ATTEMPTS) setTimeout(() => record(n, attempt + 1), attempt * 1000).unref();
      else log.error({ alert: n.alert.id, kind: n.kind, err: err.message }, 'cannot record an alert notification in the outbox: not told');
    });
  };
  engine.off('notify', tell);
  engine.on('notify', record);
  return () => {
    engine.off('notify', record);
    engine.on('notify', tell);
  };
}
