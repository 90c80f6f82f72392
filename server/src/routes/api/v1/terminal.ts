import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';

/**
 * WebSocket /api/v1/nodes/{id}/terminal?cols=&rows=: a login shell on the node's PTY, relayed by
 * the server (protocol in services/terminal-relay.ts). Operators and admins; the relay audits
 * every opening, refusal and end.
 */
export const terminalRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/nodes/:id/terminal', {
    websocket: true,
    config: { role: 'operator', audit: 'terminal.open' },
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
    const { cols = 80, rows = 24, user } = request.query;
    app.terminals.openFor(request.params.id, socket, { cols, rows, user }, {
      userId: request.user!.id, username: request.user!.username, ip: request.ip,
    });
  });
};
