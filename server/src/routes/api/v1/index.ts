import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { agentRoute } from './agent.js';
import { artifactsRoutes } from './artifacts.js';
import { alertRulesRoutes } from './alert-rules.js';
import { alertsRoutes } from './alerts.js';
import { agentUpdatesRoutes } from './agent-updates.js';
import { auditRoutes } from './audit.js';
import { kioskRoute, loginRoute, sessionRoutes } from './auth.js';
import { channelsRoutes } from './channels.js';
import { commandsRoutes } from './commands.js';
import { deviceKeepaliveRoutes } from './device-keepalive.js';
import { devicesRoutes } from './devices.js';
import { enrollmentTokenExchangeRoute, enrollmentTokensRoutes } from './enrollment-tokens.js';
import { enrollmentsRoutes } from './enrollments.js';
import { demosRoutes } from './demos.js';
import { deploymentsRoutes } from './deployments.js';
import { liveRoute } from './live.js';
import { logsRoutes } from './logs.js';
import { metricsRoutes } from './metrics.js';
import { nodesRoutes } from './nodes.js';
import { openapiRoute } from './openapi.js';
import { serverRoutes } from './server.js';
import { terminalRoute } from './terminal.js';
import { tokensRoutes } from './tokens.js';
import { usersRoutes } from './users.js';

/**
 * /api/v1: login and the agent endpoint are public; everything else sits behind one hook pair:
 * authenticate (session or token), then authorize (the route's declared role, see route-guards).
 */
export const apiV1: FastifyPluginAsyncTypebox = async (app) => {
  await app.register(loginRoute);
  await app.register(kioskRoute);
  await app.register(agentRoute);
  await app.register(deviceKeepaliveRoutes);
  await app.register(enrollmentTokenExchangeRoute);
  await app.register(async (protectedApp) => {
    protectedApp.addHook('onRequest', app.authenticate);
    protectedApp.addHook('onRequest', app.authorize);
    for (const routes of [sessionRoutes, tokensRoutes, usersRoutes, nodesRoutes, demosRoutes, logsRoutes, commandsRoutes, devicesRoutes, auditRoutes, terminalRoute, liveRoute, serverRoutes, openapiRoute, metricsRoutes, enrollmentsRoutes, enrollmentTokensRoutes, artifactsRoutes, deploymentsRoutes, alertsRoutes, alertRulesRoutes, channelsRoutes,
      agentUpdatesRoutes]) {
      await protectedApp.register(routes);
    }
  });
};
