import { ErrorCode as NatsErrorCode, NatsError, type NatsConnection, type Subscription } from 'nats';
import type { ClusterNames } from './cluster-names.js';

/**
 * Answers presence probes while this replica runs. The NATS server drops a client's
 * subscriptions the moment its connection ends (a killed process's socket is closed by the
 * system; a silent one within the server's ping interval): a probe nobody takes is answered "no
 * responders" at once, without waiting for a timeout or a lease.
 */
export function answerPresence(nc: NatsConnection, names: ClusterNames, replica: string): Subscription {
  return nc.subscribe(names.presenceSubject(replica), { callback: (err, msg) => { if (!err) msg.respond(); } });
}

/**
 * Whether no process of this replica id is on the bus now: true only on NATS's "no responders"
 * (or an id no replica can have, such as the '' of rows made before owners were recorded). An
 * answer, a timeout or a bus error is "maybe there": nothing is ended on a doubt.
 */
export async function replicaGone(nc: NatsConnection, names: ClusterNames, replica: string, timeoutMs: number): Promise<boolean> {
  let subject: string;
  try {
    subject = names.presenceSubject(replica);
  } catch {
    return true;
  }
  try {
    await nc.request(subject, undefined, { timeout: timeoutMs });
    return false;
  } catch (err) {
    return err instanceof NatsError && err.code === NatsErrorCode.NoResponders;
  }
}
