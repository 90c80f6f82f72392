import type { FastifyBaseLogger } from 'fastify';
import { Events, type NatsConnection } from 'nats';
import type { AlertConfig } from '../alerts/alert-config.js';
import type { ClusterNames } from './cluster-names.js';

/**
 * Keeps a replica's alert setup (rules, channels, mutes: held in memory by AlertConfig) the same
 * as the other replicas' on a shared database. A replica that changed it says so on the bus, after
 * the commit; every replica, itself included, reads it all again from the database. The message
 * is empty: the database is the truth, so there is nothing to merge, a late or repeated message
 * costs one read, and hearing its own message puts right a change that committed while a reload
 * was reading. What the bus lost while NATS was away is read again on reconnecting. Without this
 * the leader's engine judges with the rules it loaded at start and sends nothing to a channel
 * added on another replica. Returns the function that stops it.
 */
export function syncAlertConfig(nc: NatsConnection, names: Pick<ClusterNames, 'alertConfigSubject'>, config: Pick<AlertConfig, 'on' | 'off' | 'reload'>, log: FastifyBaseLogger): () => void {
  const reload = coalesced(() => config.reload(), (err) => log.warn({ err: err.message }, 'cannot read the alert setup another replica changed: read again at its next change'));
  const announce = () => {
    try {
      nc.publish(names.alertConfigSubject);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot tell the other replicas the alert setup changed');
    }
  };
  const subscription = nc.subscribe(names.alertConfigSubject, { callback: (err) => { if (!err) reload(); } });
  config.on('changed', announce);
  let stopped = false;
  void (async () => {
    for await (const status of nc.status()) {
      if (stopped) return;
      if (status.type === Events.Reconnect) reload();
    }
  })();
  return () => {
    stopped = true;
    config.off('changed', announce);
    subscription.unsubscribe();
  };
}

/** Runs work one at a time; asked again while it runs, it runs once more after (never more). */
function coalesced(work: () => Promise<void>, onError: (err: Error) => void): () => void {
  let running = false;
  let again = false;
  const run = async () => {
    running = true;
    do {
      again = false;
      await work().catch(onError);
    } while (again);
    running = false;
  };
  return () => {
    if (running) again = true;
    else void run();
  };
}
