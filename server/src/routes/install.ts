import fs from 'node:fs';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { defaultAgentPath } from '../local-agent/local-agent.js';
import { installScriptPath } from '../plugins/enrollments.js';
import { renderInstallScript } from '../services/install-links.js';
import { publicBaseUrl } from './api/v1/enrollment-tokens.js';

/** GET /install.sh (with this server's URL filled in) and the agent file it downloads: public, they hold no secret. */
export const installRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/install.sh', { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    reply.type('text/x-shellscript; charset=utf-8').header('cache-control', 'no-store');
    return renderInstallScript(fs.readFileSync(installScriptPath(), 'utf8'), publicBaseUrl(request, app.config.publicUrl));
  });
  app.get('/install/dvic_agent.py', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    reply.type('text/x-python; charset=utf-8').header('cache-control', 'no-store');
    return fs.readFileSync(defaultAgentPath());
  });
};
