import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { ServerStats } from '@dvic/protocol';
import { SERVER_VERSION } from '../version.js';

const startedAt = Date.now();

/** Open descriptors and their soft limit, from /proc (0 when unreadable: stats never fail). */
function descriptors(): { open: number; limit: number } {
  let open = 0;
  let limit = 0;
  try {
    open = fs.readdirSync('/proc/self/fd').length;
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    limit = Number(line?.split(/\s{2,}/)[1]) || 0;
  } catch {
    // out of descriptors, or not Linux
  }
  return { open, limit };
}

function memory(): { rss: number; heapUsed: number } {
  try {
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed };
  } catch {
    return { rss: 0, heapUsed: process.memoryUsage().heapUsed };
  }
}

/** Everything GET /api/v1/server/stats reports. */
export function serverStats(app: FastifyInstance): ServerStats {
  const { agentHub, liveHub, storage } = app;
  const s = agentHub.stats;
  const fds = descriptors();
  const mem = memory();
  return {
    version: SERVER_VERSION, started_at: startedAt, uptime_s: process.uptime(), rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed,
    agents_connected: agentHub.connectedCount, live_subscribers: liveHub.count,
    agent_connections_accepted: s.connectionsAccepted, agent_connections_refused: s.connectionsRefused, agent_auth_ok: s.authenticated,
    agent_auth_failures: s.authFailures, messages_received: s.messagesReceived, messages_invalid: s.invalidMessages,
    bytes_received: s.bytesReceived, messages_by_type: s.byType,
    fds_open: fds.open, fds_limit: fds.limit, fds_reserved: 0, storage: storage.status,
  };
}
