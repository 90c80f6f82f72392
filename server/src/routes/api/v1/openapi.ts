import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

export const openapiRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
};
