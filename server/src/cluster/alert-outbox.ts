import type { AlertEngine, Notification } from '../alerts/alert-engine.js';
import type { LeaderOutbox } from './leader-outbox.js';
import { NotLeaderError } from './leader-lease.js';
import type { FastifyBaseLogger } from 'fastify';

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
 * The engine's notifications go through the leader's outbox instead of straight to the notifier
 * (the relay hands them to `tell`, the notifier's add). A notification made by a replica that is
 * not (or no longer) the leader is not told: the leader's engine judges the same event. Returns
 * the function that unbinds it.
 */
export function notifyThroughOutbox(engine: Pick<AlertEngine, 'on' | 'off'>, outbox: Pick<LeaderOutbox, 'add'>, log: FastifyBaseLogger): () => void {
  const record = (n: Notification) => {
    outbox.add(alertNotificationKey(n), JSON.stringify(n)).catch((err: Error) => {
      if (err instanceof NotLeaderError) log.info({ alert: n.alert.id, kind: n.kind }, 'not the leader: the notification is the leader\'s to tell');
      else log.error({ alert: n.alert.id, kind: n.kind, err: err.message }, 'cannot record an alert notification in the outbox');
    });
  };
  engine.on('notify', record);
  return () => engine.off('notify', record);
}
