import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { auditRequest } from '../../../plugins/audit-trail.js';
import { authenticate } from '../../../plugins/authenticate.js';
import { auditRoutes } from './audit.js';
import { terminalRoute } from './terminal.js';
import { commandsRoutes } from './commands.js';
import { agentRoute } from './agent.js';
import { loginRoute, sessionRoutes } from './auth.js';
import { liveRoute } from './live.js';
import { logsRoutes } from './logs.js';
import { nodesRoutes } from './nodes.js';
import { openapiRoute } from './openapi.js';
import { serverRoutes } from './server.js';
import { tokensRoutes } from './tokens.js';

/** /api/v1: login and the agent endpoint are public; everything else sits behind one auth hook. */
export const apiV1: FastifyPluginAsyncTypebox = async (app) => {
  app.decorateRequest('user', null);
  app.decorateRequest('audit', auditRequest);
  await app.register(loginRoute);
  await app.register(agentRoute);
  await app.register(async (protectedApp) => {
    protectedApp.addHook('onRequest', authenticate);
    await protectedApp.register(sessionRoutes);
    await protectedApp.register(tokensRoutes);
    await protectedApp.register(nodesRoutes);
    await protectedApp.register(logsRoutes);
    await protectedApp.register(commandsRoutes);
    await protectedApp.register(auditRoutes);
    await protectedApp.register(terminalRoute);
    await protectedApp.register(liveRoute);
    await protectedApp.register(serverRoutes);
    await protectedApp.register(openapiRoute);
  });
};
