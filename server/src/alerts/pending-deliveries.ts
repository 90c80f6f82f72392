import type { Alert, AlertDelivery } from '@dvic/protocol';
import type { AlertChannelsRepository, ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { AlertsRepository } from '../repositories/alerts-repository.js';
import type { Deliveries, WhatItSaysNow } from './deliveries.js';
import { buildMessage, testMessage } from './message.js';

/**
 * Takes up the deliveries stored pending (a restart, or a leader that died between storing a
 * delivery and sending it, or while it waited to retry): each attempted at its next_attempt_at.
 * With `holdMs`, none is attempted sooner (a deposed leader still alive may be attempting it: it
 * has stored the outcome by then, and the delivery is attempted only if still pending as read).
 * With `dueBefore`, only those whose attempt was due before then and that this process does not
 * attempt: nobody else attempts them either (an attempt elsewhere would have stored its outcome
 * by then: a follower leaves a failed channel test's retries to the leader). The message is made
 * again, when it is attempted, from the alerts it names as they are stored then (the delivery
 * keeps no copy of it); one about nothing still firing is given up then (failed, with why).
 * Returns how many were resumed.
 */
export async function resumePendingDeliveries(
  deliveries: Pick<Deliveries, 'resume' | 'attempts'>, channels: Pick<AlertChannelsRepository, 'pendingDeliveries'>, alerts: Pick<AlertsRepository, 'get'>,
  channelOf: (id: string) => ChannelRecord | null, { dueBefore, holdMs }: { dueBefore?: number; holdMs?: number } = {},
): Promise<number> {
  let resumed = 0;
  for (const delivery of await channels.pendingDeliveries()) {
    if (deliveries.attempts(delivery.id)) continue;
    if (dueBefore !== undefined && (delivery.next_attempt_at ?? Infinity) >= dueBefore) continue;
    const channel = channelOf(delivery.channel_id);
    if (!channel) continue;
    if (deliveries.resume(delivery, (stored) => whatItSaysNow(stored, channel, alerts), holdMs)) resumed++;
  }
  return resumed;
}

/**
 * A resumed delivery's message, made from its alerts as stored now; or why it goes no more. A
 * firing, flapping or repeat message names only its alerts still firing (a repeat: and not
 * acknowledged): about alerts resolved since, it would reach the receiver after their resolution.
 */
async function whatItSaysNow(delivery: AlertDelivery, channel: ChannelRecord, alerts: Pick<AlertsRepository, 'get'>): ReturnType<WhatItSaysNow> {
  const { kind } = delivery;
  if (kind === 'test') return { message: testMessage(channel.name, delivery.created_at) };
  const stored = (await Promise.all(delivery.alert_ids.map((id) => alerts.get(id)))).filter((a): a is Alert => a !== undefined);
  const current = kind === 'resolved' ? stored : stored.filter((a) => a.state === 'firing' && (kind !== 'repeat' || a.acked_at === null));
  if (current.length) return { message: buildMessage(kind, current.map((alert) => ({ alert })), delivery.created_at) };
  if (!stored.length) return { stale: 'not sent: its alerts were deleted before it could be' };
  return { stale: kind === 'repeat' ? 'not sent: its alerts were resolved or acknowledged before it could be' : 'not sent: its alerts resolved before it could be (their resolution is told)' };
}
