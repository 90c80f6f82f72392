import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

/** The one WebSocket each node agent keeps open (docs/protocol.md). Authenticated by the handshake. */
export const agentRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/agent', { websocket: true, config: { public: true, browser: false }, schema: { hide: true } }, (socket, request) => {
    // Refused with 1013 (try again later) when only the descriptors kept for the API and the database are left.
    if (!app.descriptors.admitAgent(socket)) return;
    app.agentHub.accept(socket, request.raw);
  });
};
