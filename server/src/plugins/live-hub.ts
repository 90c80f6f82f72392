import fp from 'fastify-plugin';
import { LiveHub } from '../live/live-hub.js';
import { SERVER_VERSION } from '../version.js';

declare module 'fastify' {
  interface FastifyInstance {
    liveHub: LiveHub;
  }
}

/** /api/v1/live: node, demo, command and server events fanned out to dashboards and CLIs. */
export const liveHubPlugin = fp(async (app) => {
  const { storage } = app;
  const hub = new LiveHub({
    registry: app.nodeRegistry, devices: app.deviceRegistry, demos: app.demoRegistry, catalog: app.demoCatalog, logWriter: app.logWriter, logStore: app.logStore, commands: app.commands, storage, enrollments: app.enrollments, alerts: app.alerts.engine,
  }, app.protocolValidator, () => ({ version: SERVER_VERSION, storage: storage.status }), app.log.child({ component: 'live' }));
  app.decorate('liveHub', hub);
  app.addHook('preClose', async () => hub.closeAll());
}, { name: 'live-hub', dependencies: ['nodes', 'devices', 'demos', 'demo-catalog', 'logs', 'commands', 'storage', 'agent-hub', 'enrollments', 'alerts'] });
