import type { Alert, AlertDelivery } from '@dvic/protocol';
import type { AlertChannelsRepository, ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { AlertsRepository } from '../repositories/alerts-repository.js';
import type { Deliveries } from './deliveries.js';
import { buildMessage, testMessage, type AlertMessage } from './message.js';

/**
 * Takes up the deliveries stored pending (a restart, or a leader that died between storing a
 * delivery and sending it, or while it waited to retry): each attempted at its next_attempt_at.
 * With `dueBefore`, only those whose attempt was due before then and that this process does not
 * attempt: nobody else attempts them either (an attempt elsewhere would have stored its outcome
 * by then: a follower leaves a failed channel test's retries to the leader). The message is made
 * again from the alerts it names as they are stored now (the delivery keeps no copy of it).
 * Returns how many were resumed.
 */
export async function resumePendingDeliveries(
  deliveries: Pick<Deliveries, 'resume' | 'attempts'>, channels: Pick<AlertChannelsRepository, 'pendingDeliveries'>, alerts: Pick<AlertsRepository, 'get'>,
  channelOf: (id: string) => ChannelRecord | null, dueBefore?: number,
): Promise<number> {
  let resumed = 0;
  for (const delivery of await channels.pendingDeliveries()) {
    if (deliveries.attempts(delivery.id)) continue;
    if (dueBefore !== undefined && (delivery.next_attempt_at ?? Infinity) >= dueBefore) continue;
    const channel = channelOf(delivery.channel_id);
    if (!channel) continue;
    const message = await messageOf(delivery.kind, delivery.alert_ids, delivery.created_at, channel, alerts);
    if (!message) continue;
    if (deliveries.resume(delivery, message)) resumed++;
  }
  return resumed;
}

async function messageOf(kind: AlertDelivery['kind'], alertIds: string[], at: number, channel: ChannelRecord, alerts: Pick<AlertsRepository, 'get'>): Promise<AlertMessage | null> {
  if (kind === 'test') return testMessage(channel.name, at);
  const stored = (await Promise.all(alertIds.map((id) => alerts.get(id)))).filter((a): a is Alert => a !== undefined);
  return stored.length ? buildMessage(kind, stored.map((alert) => ({ alert })), at) : null;
}
