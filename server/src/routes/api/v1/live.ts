import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

/** Live stream for dashboards and the CLI: a snapshot, then node events (docs/protocol.md). */
export const liveRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/live', { websocket: true, schema: { hide: true } }, (socket, request) => {
    app.liveHub.subscribe(socket, request.user!);
  });
};
