import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { notFound } from '../../../errors.js';
import { API_TOKEN_PREFIX, newSecret, sha256Hex } from '../../../services/tokens.js';
import { EpochMs, NullableEpochMs, errors } from '../../../schemas/common.js';

const TokenView = Type.Object({
  id: Type.Integer(), name: Type.String(), prefix: Type.String({ description: 'First characters of the token' }),
  created_at: EpochMs, last_used_at: NullableEpochMs, revoked_at: NullableEpochMs,
});

const view = (t: { id: number; name: string; prefix: string; createdAt: number; lastUsedAt: number | null; revokedAt: number | null }) => ({
  id: t.id, name: t.name, prefix: t.prefix, created_at: t.createdAt, last_used_at: t.lastUsedAt, revoked_at: t.revokedAt,
});

export const tokensRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/tokens', {
    schema: { tags: ['tokens'], summary: 'Your API tokens', response: { 200: Type.Object({ tokens: Type.Array(TokenView) }), ...errors(401) } },
  }, async (request) => ({ tokens: app.services.apiTokens.listForUser(request.user!.id).map(view) }));

  app.post('/tokens', {
    schema: {
      tags: ['tokens'], summary: 'Create an API token (shown once)',
      description: 'Use it as "Authorization: Bearer <token>". Only its SHA-256 is stored.',
      body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) }),
      response: { 201: Type.Object({ token: Type.String(), info: TokenView }), ...errors(400, 401) },
    },
  }, async (request, reply) => {
    const secret = newSecret(API_TOKEN_PREFIX);
    const info = app.services.apiTokens.create(request.user!.id, request.body.name, secret.slice(0, API_TOKEN_PREFIX.length + 6), sha256Hex(secret));
    request.audit('token.create', String(info.id), 'ok', { name: info.name });
    return reply.code(201).send({ token: secret, info: view(info) });
  });

  app.delete('/tokens/:id', {
    schema: {
      tags: ['tokens'], summary: 'Revoke an API token',
      params: Type.Object({ id: Type.Integer() }),
      response: { 200: Type.Object({ token: TokenView }), ...errors(401, 404) },
    },
  }, async (request) => {
    const token = app.services.apiTokens.revoke(request.user!.id, request.params.id);
    if (!token) throw notFound('active token');
    request.audit('token.revoke', String(token.id), 'ok', { name: token.name });
    return { token: view(token) };
  });
};
