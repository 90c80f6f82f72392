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

/** Last log lines an alert about a demo carries. */
const LAST_LINES = 10;

/** Alerts: rules, channels and mutes; the engine on the registries' events; grouped, retried deliveries (docs/alerts.md). */
export const alertsPlugin = fp(async (app) => {
  const policy = app.config.alertPolicy;
  const channelsRepo = new AlertChannelsRepository(app.db);
  const alertsRepo = new AlertsRepository(app.db);
  const config = new AlertConfig(new AlertRulesRepository(app.db), channelsRepo, alertsRepo);
  const deliveries = new Deliveries(channelsRepo, policy, app.deferredWrites, (id) => config.listChannels().find((c) => c.id === id) ?? null);
  const lastLines = (nodeId: string, demo: string): string[] => app.logStore.search({ nodeId, demo, source: 'demo', limit: LAST_LINES }).records
    .reverse().map((r) => `${r.level} ${r.message}`.slice(0, 500));
  const engine = new AlertEngine({
    nodes: app.nodeRegistry, demos: app.demoCatalog, devices: app.deviceRegistry, lastLines, shippedAgentVersion: () => app.agentRelease().version,
  }, config, alertsRepo, policy, app.deferredWrites);
  const notifier = new Notifier(config, deliveries, policy);
  const notify = (n: Notification) => notifier.add(n);
  engine.on('notify', notify);
  app.decorate('alerts', { config, engine, deliveries, notify });
  engine.start();
  app.addHook('onClose', async () => {
    engine.stop();
    notifier.stop();
    deliveries.stop();
    alertsRepo.trimResolved();
  });
}, { name: 'alerts', dependencies: ['db', 'storage', 'nodes', 'demo-catalog', 'devices', 'logs', 'agent-updates'] });
