import type { AlertEngine, Notification } from '../alerts/alert-engine.js';
import type { Notifier, OutboxEntry } from '../alerts/notifier.js';
import type { ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { Sql } from '../db/sql.js';
import type { LeaderOutbox } from './leader-outbox.js';

/** How the engine tells a notification on one server: the alerts plugin's `notify` (to the notifier); whether its deliveries were stored. */
export type Tell = (n: Notification, entry?: OutboxEntry) => void | Promise<boolean>;

/** An outbox entry's payload: one notification for one channel. */
interface EntryPayload {
  channel_id: string;
  notification: Notification;
}

/**
 * One notification of one alert: what it says (firing, resolved, flapping; a repeat by the time
 * it was due), of which rule and subject, since when. A leader taking over rebuilds the firing
 * alerts from the database (same ids and start times): what it would tell again has the same key.
 */
export function alertNotificationKey(n: Notification): string {
  const repeat = n.kind === 'repeat' ? `|${n.alert.notified_at ?? ''}` : '';
  return `alert|${n.kind}|${n.rule.id}|${n.key}|${n.alert.started_at}${repeat}`;
}

/** The entry of a notification to one channel: the channel's delivery marks it sent (alerts/notifier.ts). */
export function channelEntryKey(n: Notification, channelId: string): string {
  return `${alertNotificationKey(n)}|${channelId}`;
}

/**
 * The outbox's deliver for alert notifications: each entry told to its channel as the engine would
 * have told it; settled once its delivery is stored (pending deliveries are resumed after a
 * handover), not when it joined the notifier's group in memory. A payload of an earlier version
 * (a notification alone, for every channel of its rule) is told to all of them.
 */
export function tellFromOutbox(tell: Tell): (payload: string, key: string) => Promise<boolean | void> {
  return async (payload, key) => {
    const parsed = JSON.parse(payload) as EntryPayload | Notification;
    if (!('notification' in parsed)) return tell(parsed);
    return tell(parsed.notification, { key, channelId: parsed.channel_id });
  };
}

/**
 * The engine's notifications go through the leader's outbox instead of straight to `tell`: an
 * entry per channel, each recorded in the transaction that stores the alert change deciding it
 * (LeaderOutbox.addIn, fenced by the lease), so an alert is never stored as notified without its
 * entries; the relay, delivering with tellFromOutbox(tell), tells them after commit, and the
 * notifier marks them sent in the transaction that stores their delivery (LeaderOutbox.markSentIn).
 * A replica that is not (or no longer) the leader records nothing: its transaction fails, and the
 * leader's engine judges the same event. Returns the function that unbinds it (and tells directly again).
 */
export function notifyThroughOutbox(
  engine: Pick<AlertEngine, 'on' | 'off' | 'recordNotificationsWith'>, outbox: Pick<LeaderOutbox, 'addIn' | 'markSentIn'>, tell: Tell,
  notifier: Pick<Notifier, 'markEntriesWith'>, channelsOf: (n: Notification) => ChannelRecord[],
  sql: Pick<Sql, 'get' | 'run' | 'afterCommit'>,
): () => void {
  engine.off('notify', tell);
  notifier.markEntriesWith((on, keys) => outbox.markSentIn(on, keys));
  engine.recordNotificationsWith(async (n) => {
    for (const channel of channelsOf(n)) {
      const payload: EntryPayload = { channel_id: channel.id, notification: n };
      await outbox.addIn(sql, channelEntryKey(n, channel.id), JSON.stringify(payload));
    }
  });
  return () => {
    engine.recordNotificationsWith(null);
    notifier.markEntriesWith(null);
    engine.on('notify', tell);
  };
}
