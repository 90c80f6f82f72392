import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { errors } from '../../../schemas/common.js';

const startedAt = Date.now();

export const serverRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/server/stats', {
    schema: {
      tags: ['server'], summary: 'Server self-monitoring: connections, message counters, memory',
      response: {
        200: Type.Object({
          started_at: Type.Integer(), uptime_s: Type.Number(), rss_bytes: Type.Integer(), heap_used_bytes: Type.Integer(),
          agents_connected: Type.Integer(), live_subscribers: Type.Integer(),
          agent_connections_accepted: Type.Integer(), agent_auth_ok: Type.Integer(),
          agent_auth_failures: Type.Record(Type.String(), Type.Integer()),
          messages_received: Type.Integer(), messages_invalid: Type.Integer(), bytes_received: Type.Integer(),
          messages_by_type: Type.Record(Type.String(), Type.Integer()),
        }),
        ...errors(401),
      },
    },
  }, async () => {
    const { agentHub, liveHub } = app.services;
    const s = agentHub.stats;
    const memory = process.memoryUsage();
    return {
      started_at: startedAt, uptime_s: process.uptime(), rss_bytes: memory.rss, heap_used_bytes: memory.heapUsed,
      agents_connected: agentHub.connectedCount, live_subscribers: liveHub.count,
      agent_connections_accepted: s.connectionsAccepted, agent_auth_ok: s.authenticated, agent_auth_failures: s.authFailures,
      messages_received: s.messagesReceived, messages_invalid: s.invalidMessages, bytes_received: s.bytesReceived,
      messages_by_type: s.byType,
    };
  });
};
