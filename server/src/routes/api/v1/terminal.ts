import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { requireAdmin } from '../../../plugins/audit-trail.js';

/**
 * WebSocket /api/v1/nodes/{id}/terminal?cols=&rows=: a login shell on the node's PTY, relayed by
 * the server (protocol in services/terminal-relay.ts). Admins only; opening and closing are audited.
 */
export const terminalRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/nodes/:id/terminal', {
    websocket: true,
    config: { audit: 'terminal.open' },
    preHandler: requireAdmin,
    schema: {
      hide: true,
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      querystring: Type.Object({
        cols: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 80 })),
        rows: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 24 })),
        user: Type.Optional(Type.String({ maxLength: 64, pattern: '^[a-z_][a-z0-9_-]*[$]?$' })),
      }),
    },
  }, (socket, request) => {
    const { registry, agentHub, terminals } = app.services;
    const node = registry.find(request.params.id);
    const refuse = (reason: string) => {
      request.audit('terminal.open', node?.id ?? request.params.id, 'failed', { reason });
      socket.send(JSON.stringify({ type: 'closed', exit_code: null, reason }));
      socket.close(4404, reason);
    };
    if (!node) return refuse('node not found');
    if (!agentHub.isConnected(node.id)) return refuse('node is offline');
    if (!agentHub.capabilities(node.id)?.includes('terminal')) return refuse('the agent on this node cannot open terminals (update it)');
    const { cols = 80, rows = 24, user } = request.query;
    const session = terminals.open(node.id, socket, { cols, rows, user }, ({ reason, exitCode, durationMs }) => {
      request.audit('terminal.close', node.id, 'ok', { channel: session.channel, reason, exit_code: exitCode, duration_ms: durationMs });
    });
    request.audit('terminal.open', node.id, 'ok', { channel: session.channel, cols, rows, ...(user ? { user } : {}) });
  });
};
