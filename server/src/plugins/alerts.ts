import fp from 'fastify-plugin';
import { AlertConfig } from '../alerts/alert-config.js';
import { AlertEngine, type Notification } from '../alerts/alert-engine.js';
import { Deliveries } from '../alerts/deliveries.js';
import { Notifier } from '../alerts/notifier.js';
import { AlertChannelsRepository } from '../repositories/alert-channels-repository.js';
import { AlertRulesRepository } from '../repositories/alert-rules-repository.js';
import { AlertsRepository } from '../repositories/alerts-repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** notify: the engine's listener that hands notifications to the notifier (the cluster wiring puts the leader outbox in between). */
    alerts: { config: AlertConfig; engine: AlertEngine; deliveries: Deliveries; notify: (n: Notification) => void };
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
  const config = await AlertConfig.load(new AlertRulesRepository(sql), channelsRepo, alertsRepo, (fn) => sql.afterCommit(fn));
  const deliveries = new Deliveries(channelsRepo, policy, app.deferredWrites, sql, (id) => config.listChannels().find((c) => c.id === id) ?? null);
  const lastLines = (nodeId: string, demo: string): string[] => app.recentLines.of(nodeId, demo).slice(-LAST_LINES);
  const engine = new AlertEngine({
    nodes: app.nodeRegistry, demos: app.demoCatalog, devices: app.deviceRegistry, lastLines, shippedAgentVersion: () => app.agentRelease().version,
  }, config, alertsRepo, policy, sql, app.deferredWrites);
  const notifier = new Notifier(config, deliveries, policy);
  const notify = (n: Notification) => notifier.add(n);
  engine.on('notify', notify);
  app.decorate('alerts', { config, engine, deliveries, notify });
  // On a shared database only the leader evaluates (plugins/cluster-state.ts starts it as a leader job):
  // an engine started here would judge, store and tell before the cluster wiring is in place.
  if (!sharedDatabase(app.config)) await engine.start();
  app.addHook('onClose', async () => {
    engine.stop();
    notifier.stop();
    deliveries.stop();
    await engine.settled();
    await alertsRepo.trimResolved().catch((err: unknown) => app.log.warn({ err }, 'the alert history could not be trimmed at shutdown'));
  });
}, { name: 'alerts', dependencies: ['db', 'storage', 'nodes', 'demo-catalog', 'devices', 'logs', 'agent-updates'] });
