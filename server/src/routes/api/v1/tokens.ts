import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { notFound } from '../../../errors.js';
import { API_TOKEN_PREFIX, newSecret, sha256Hex } from '../../../services/tokens.js';
import type { ApiToken } from '../../../repositories/api-tokens-repository.js';
import { errors } from '../../../schemas/common.js';
import { ApiTokenRef } from '../../../schemas/protocol-schemas.js';

const view = (t: ApiToken) => ({
  id: t.id, name: t.name, prefix: t.prefix, role: t.role, created_at: t.createdAt, expires_at: t.expiresAt, last_used_at: t.lastUsedAt, revoked_at: t.revokedAt,
});

export const tokensRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { apiTokens } = app;

  app.get('/tokens', {
    schema: { tags: ['tokens'], summary: 'Your API tokens', response: { 200: Type.Object({ tokens: Type.Array(ApiTokenRef) }), ...errors(401) } },
  }, async (request) => ({ tokens: apiTokens.listForUser(request.user!.id).map(view) }));

  app.post('/tokens', {
    config: { audit: 'token.create' },
    schema: {
      tags: ['tokens'], summary: 'Create an API token (shown once)',
      description: 'Use it as "Authorization: Bearer <token>". Only its SHA-256 is stored.',
      body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
      response: { 201: Type.Object({ token: Type.String(), info: ApiTokenRef }), ...errors(400, 401) },
    },
  }, (request, reply) => {
    const secret = newSecret(API_TOKEN_PREFIX);
    const info = apiTokens.create(request.user!.id, request.body.name, secret.slice(0, API_TOKEN_PREFIX.length + 6), sha256Hex(secret));
    reply.code(201);
    return { token: secret, info: view(info) };
  });

  app.delete('/tokens/:id', {
    config: { audit: 'token.revoke' },
    schema: {
      tags: ['tokens'], summary: 'Revoke an API token',
      params: Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }),
      response: { 200: Type.Object({ token: ApiTokenRef }), ...errors(400, 401, 404) },
    },
  }, (request) => {
    const token = apiTokens.revoke(request.user!.id, request.params.id);
    if (!token) throw notFound('active token');
    return { token: view(token) };
  });
};
