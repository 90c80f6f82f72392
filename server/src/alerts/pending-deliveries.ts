import type { Alert, AlertDelivery } from '@dvic/protocol';
import type { AlertChannelsRepository, ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { AlertsRepository } from '../repositories/alerts-repository.js';
import type { AlertPolicy } from './alert-policy.js';
import type { Deliveries } from './deliveries.js';
import { buildMessage, type AlertMessage } from './message.js';

/** Beyond its retries' own span, what a handover or a restart may take before a delivery is taken up again. */
const RESUME_GRACE_MS = 60_000;
/** Kinds that say an alert fires: stale once every alert they name has resolved. */
const FIRING_KINDS: ReadonlySet<AlertDelivery['kind']> = new Set(['firing', 'repeat', 'flapping']);

/**
 * Takes up the deliveries stored pending (a restart, or a leader that died between storing a
 * delivery and sending it, or while it waited to retry): each attempted at its next_attempt_at.
 * The message is made again from the alerts it names as they are stored now (the delivery keeps
 * no copy of it). One that would mislead is given up instead (failed, with why): a "firing" whose
 * alerts have all resolved since (the receiver would reopen an incident the "resolved" closed),
 * one whose alerts are gone, and one older than its retries would have lasted (a server down for
 * hours does not send yesterday's news). Returns how many were resumed.
 */
export async function resumePendingDeliveries(
  deliveries: Pick<Deliveries, 'resume' | 'giveUp' | 'busyIds'>, channels: Pick<AlertChannelsRepository, 'pendingDeliveries'>, alerts: Pick<AlertsRepository, 'get'>,
  channelOf: (id: string) => ChannelRecord | null, policy: Pick<AlertPolicy, 'retryBaseMs' | 'deliveryAttempts' | 'deliveryTimeoutMs'>,
): Promise<number> {
  const oldest = Date.now() - retryHorizonMs(policy) - RESUME_GRACE_MS;
  let resumed = 0;
  const busy = deliveries.busyIds();
  for (const delivery of await channels.pendingDeliveries()) {
    const channel = channelOf(delivery.channel_id);
    if (!channel || busy.has(delivery.id)) continue;
    if (delivery.created_at < oldest) {
      await deliveries.giveUp(delivery, 'expired: not sent while its retries lasted (the server or its leader was away)');
      continue;
    }
    const outcome = await messageOf(delivery, alerts);
    if (outcome === null) continue;
    if (typeof outcome === 'string') {
      await deliveries.giveUp(delivery, outcome);
      continue;
    }
    deliveries.resume(delivery, outcome);
    resumed++;
  }
  return resumed;
}

/** How long after its creation a delivery may still be attempted: every wait between attempts and every attempt's timeout. */
export function retryHorizonMs(policy: Pick<AlertPolicy, 'retryBaseMs' | 'deliveryAttempts' | 'deliveryTimeoutMs'>): number {
  return policy.retryBaseMs * (2 ** (policy.deliveryAttempts - 1) - 1) + policy.deliveryAttempts * policy.deliveryTimeoutMs;
}

/** The message to send again, why it must not be sent, or null: not this one's to take up. */
async function messageOf(delivery: AlertDelivery, alerts: Pick<AlertsRepository, 'get'>): Promise<AlertMessage | string | null> {
  // A channel test is retried by the replica whose request made it (follower or not), never taken up by another.
  if (delivery.kind === 'test') return null;
  const stored = (await Promise.all(delivery.alert_ids.map((id) => alerts.get(id)))).filter((a): a is Alert => a !== undefined);
  if (!stored.length) return 'its alerts are gone: not sent';
  if (FIRING_KINDS.has(delivery.kind) && stored.every((a) => a.state === 'resolved')) return 'superseded: its alerts resolved before it could be sent';
  return buildMessage(delivery.kind, stored.map((alert) => ({ alert })), delivery.created_at);
}
