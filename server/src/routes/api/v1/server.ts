import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '../../../schemas/common.js';
import { ServerStatsRef } from '../../../schemas/protocol-schemas.js';
import { memoryFigures } from '../../../services/process-figures.js';
import { SERVER_VERSION } from '../../../version.js';

const startedAt = Date.now();

export const serverRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/server/stats', {
    schema: {
      tags: ['server'], summary: 'Server self-monitoring: connections, message counters, memory, descriptors, storage',
      response: { 200: ServerStatsRef, ...errors(401) },
    },
  }, async () => {
    const { agentHub, liveHub, descriptors, storage } = app.services;
    const s = agentHub.stats;
    const memory = memoryFigures();
    return {
      version: SERVER_VERSION, started_at: startedAt, uptime_s: process.uptime(), rss_bytes: memory.rss, heap_used_bytes: memory.heapUsed,
      agents_connected: agentHub.connectedCount, live_subscribers: liveHub.count,
      agent_connections_accepted: s.connectionsAccepted, agent_connections_refused: descriptors.agentSocketsRefused,
      agent_auth_ok: s.authenticated, agent_auth_failures: s.authFailures,
      messages_received: s.messagesReceived, messages_invalid: s.invalidMessages, bytes_received: s.bytesReceived,
      messages_by_type: s.byType,
      fds_open: descriptors.open(), fds_limit: Number.isFinite(descriptors.limit) ? descriptors.limit : 0, fds_reserved: descriptors.reserved,
      storage: storage.status,
    };
  });
};
