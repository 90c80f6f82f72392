import type { FastifyInstance } from 'fastify';
import type { ServerStats } from '@dvic/protocol';
import { SERVER_VERSION } from '../version.js';
import { memoryFigures } from './process-figures.js';

const startedAt = Date.now();

/** Everything GET /api/v1/server/stats reports. */
export function serverStats(app: FastifyInstance): ServerStats {
  const { agentHub, liveHub, storage, descriptors } = app;
  const s = agentHub.stats;
  const mem = memoryFigures();
  return {
    version: SERVER_VERSION, started_at: startedAt, uptime_s: process.uptime(), rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed,
    agents_connected: agentHub.connectedCount, live_subscribers: liveHub.count,
    agent_connections_accepted: s.connectionsAccepted, agent_connections_refused: descriptors.agentSocketsRefused, agent_auth_ok: s.authenticated,
    agent_auth_failures: s.authFailures, messages_received: s.messagesReceived, messages_invalid: s.invalidMessages,
    bytes_received: s.bytesReceived, messages_by_type: s.byType,
    fds_open: descriptors.open(), fds_limit: Number.isFinite(descriptors.limit) ? descriptors.limit : 0, fds_reserved: descriptors.reserved,
    storage: storage.status,
  };
}
