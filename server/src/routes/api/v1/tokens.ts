import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { ApiError, notFound } from '../../../errors.js';
import { roleRank, type Role } from '../../../repositories/users-repository.js';
import { API_TOKEN_PREFIX, newSecret, sha256Hex } from '../../../services/tokens.js';
import type { ApiToken } from '../../../repositories/api-tokens-repository.js';
import { errors } from '../../../schemas/common.js';
import { ApiTokenRef } from '../../../schemas/protocol-schemas.js';

const view = (t: ApiToken) => ({
  id: t.id, name: t.name, prefix: t.prefix, role: t.role, created_at: t.createdAt, expires_at: t.expiresAt, last_used_at: t.lastUsedAt, revoked_at: t.revokedAt, scope: t.scope,
});

export const tokensRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { apiTokens } = app;

  app.get('/tokens', {
    schema: { tags: ['tokens'], summary: 'Your API tokens', response: { 200: Type.Object({ tokens: Type.Array(ApiTokenRef) }), ...errors(401) } },
  }, async (request) => ({ tokens: (await apiTokens.listForUser(request.user!.id)).map(view) }));

  app.post('/tokens', {
    config: { audit: 'token.create' },
    schema: {
      tags: ['tokens'], summary: 'Create an API token (shown once)',
      description: 'Use it as "Authorization: Bearer <token>". Only its SHA-256 is stored. `role` (default: yours) may not be above yours; `expires_at` (epoch ms) or `expires_in_days` (default: never) ends it.',
      body: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 128 }),
        role: Type.Optional(Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')])),
        expires_at: Type.Optional(Type.Integer({ minimum: 0, maximum: 8_640_000_000_000_000, description: 'Epoch ms, in the future' })),
        expires_in_days: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 36_500 })),
        scope: Type.Optional(Type.Literal('metrics', { description: 'Limit the token to GET /metrics (a Prometheus scraper)' })),
      }, { additionalProperties: false }),
      response: { 201: Type.Object({ token: Type.String(), info: ApiTokenRef }), ...errors(400, 401) },
    },
  }, async (request, reply) => {
    const { name, role, expires_at: expiresAt, expires_in_days: days, scope } = request.body;
    const user = request.user!;
    if (role && roleRank(role) > roleRank(user.role)) throw new ApiError(400, ErrorCode.badRequest, `role ${role} is above yours (${user.role}): a token can do at most what you can`);
    if (expiresAt !== undefined && days !== undefined) throw new ApiError(400, ErrorCode.badRequest, 'give expires_at or expires_in_days, not both');
    const now = Date.now();
    const expiry = days !== undefined ? Math.round(now + days * 86_400_000) : expiresAt ?? null;
    if (expiry !== null && expiry <= now) throw new ApiError(400, ErrorCode.badRequest, 'the token would expire at once: expires_at or expires_in_days must be in the future');
    const secret = newSecret(API_TOKEN_PREFIX);
    const info = await apiTokens.create(user.id, name, secret.slice(0, API_TOKEN_PREFIX.length + 6), sha256Hex(secret), { role: (role ?? user.role) as Role, expiresAt: expiry, scope: scope ?? null });
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
  }, async (request) => {
    const token = await apiTokens.revoke(request.user!.id, request.params.id);
    if (!token) throw notFound('active token');
    await app.endCredentials({ token: (await apiTokens.hashOf(token.id))! }, 'the API token was revoked');
    return { token: view(token) };
  });
};
