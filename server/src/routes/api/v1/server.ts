import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '../../../schemas/common.js';
import { ServerStatsRef } from '../../../schemas/protocol-schemas.js';
import { serverStats } from '../../../services/server-stats.js';

export const serverRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/server/stats', {
    config: { role: 'operator' },
    schema: {
      tags: ['server'], summary: 'Server self-monitoring: connections, message counters, memory, descriptors, storage',
      response: { 200: ServerStatsRef, ...errors(401, 403) },
    },
  }, async () => serverStats(app));
};
