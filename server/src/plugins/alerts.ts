import fp from 'fastify-plugin';
import { AlertConfig } from '../alerts/alert-config.js';
import { AlertEngine, type Notification } from '../alerts/alert-engine.js';
import { Deliveries } from '../alerts/deliveries.js';
import { Notifier, type OutboxEntry } from '../alerts/notifier.js';
import { resumePendingDeliveries } from '../alerts/pending-deliveries.js';
import { AlertChannelsRepository } from '../repositories/alert-channels-repository.js';
import { AlertRulesRepository } from '../repositories/alert-rules-repository.js';
import { AlertsRepository } from '../repositories/alerts-repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * notify: the engine's listener that hands notifications to the notifier (the cluster wiring puts the leader outbox in between,
     * and marks its entries sent with their deliveries through the notifier);
     * deliveryJob: the notifier and the deliveries' retries, with the pending deliveries resumed at start (run by the leader on a shared database).
     */
    alerts: {
      config: AlertConfig; engine: AlertEngine; deliveries: Deliveries; notifier: Notifier; notify: (n: Notification, entry?: OutboxEntry) => Promise<boolean>;
      deliveryJob: { start(): Promise<void>; stop(): void };
    };
  }
}

/** Replicas on one PostgreSQL database and a bus: the leader runs the engine. */
export const sharedDatabase = (config: { natsUrl: string | undefined; databaseUrl: string | undefined }): boolean => Boolean(config.natsUrl && config.databaseUrl);

/** Last log lines an alert about a demo carries. */
const LAST_LINES = 10;

/** Alerts: rules, channels and mutes; the engine on the registries' events; grouped, retried deliveries (docs/alerts.md). */
export const alertsPlugin = fp(async (app) => {
  const policy = app.config.alertPolicy;
  const { sql } = app;
  const channelsRepo = new AlertChannelsRepository(sql);
  const alertsRepo = new AlertsRepository(sql);
  const config = await AlertConfig.load(new AlertRulesRepository(sql), channelsRepo, alertsRepo, sql);
  const channelOf = (id: string) => config.listChannels().find((c) => c.id === id) ?? null;
  const deliveries = new Deliveries(channelsRepo, policy, app.deferredWrites, sql, channelOf);
  const lastLines = (nodeId: string, demo: string): string[] => app.recentLines.of(nodeId, demo).slice(-LAST_LINES);
  const engine = new AlertEngine({
    nodes: app.nodeRegistry, demos: app.demoCatalog, devices: app.deviceRegistry, lastLines, shippedAgentVersion: () => app.agentRelease().version,
  }, config, alertsRepo, policy, sql, app.deferredWrites);
  const notifier = new Notifier(config, deliveries, policy, sql);
  const notify = (n: Notification, entry?: OutboxEntry) => notifier.add(n, entry);
  engine.on('notify', notify);
  // Pending deliveries nobody attempts (a follower's failed channel test) are looked for every
  // delivery timeout (at least 1 s apart), and taken once due for twice that.
  const overdueCheckMs = Math.max(1000, policy.deliveryTimeoutMs);
  let overdueTimer: NodeJS.Timeout | undefined;
  const takeUpOverdue = async () => {
    const resumed = await resumePendingDeliveries(deliveries, channelsRepo, alertsRepo, channelOf, { dueBefore: Date.now() - 2 * policy.deliveryTimeoutMs })
      .catch((err: Error) => { app.log.warn({ err: err.message }, 'could not look for overdue alert deliveries: trying again later'); return 0; });
    if (resumed) app.log.info({ resumed }, 'overdue alert deliveries taken up');
  };
  const deliveryJob = {
    start: async () => {
      deliveries.start();
      // On a shared database the leader before may still be alive, finishing an attempt: its outcome is awaited.
      const holdMs = sharedDatabase(app.config) ? policy.deliveryTimeoutMs : 0;
      const resumed = await resumePendingDeliveries(deliveries, channelsRepo, alertsRepo, channelOf, { holdMs });
      if (resumed) app.log.info({ resumed }, 'alert deliveries left pending resumed');
      overdueTimer = setInterval(() => void takeUpOverdue(), overdueCheckMs).unref();
    },
    stop: () => {
      clearInterval(overdueTimer);
      notifier.stop();
      deliveries.stop();
    },
  };
  app.decorate('alerts', { config, engine, deliveries, notifier, notify, deliveryJob });
  // On a shared database only the leader evaluates and sends (plugins/cluster-state.ts starts these as leader
  // jobs): an engine started here would judge, store and tell before the cluster wiring is in place.
  if (!sharedDatabase(app.config)) {
    await engine.start();
    await deliveryJob.start();
  }
  app.addHook('onClose', async () => {
    engine.stop();
    deliveryJob.stop();
    await engine.settled();
    await alertsRepo.trimResolved().catch((err: unknown) => app.log.warn({ err }, 'the alert history could not be trimmed at shutdown'));
  });
}, { name: 'alerts', dependencies: ['db', 'storage', 'nodes', 'demo-catalog', 'devices', 'logs', 'agent-updates'] });
