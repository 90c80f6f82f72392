import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../../../errors.js';
import { errors } from '../../../schemas/common.js';
import { AuditEntryRef } from '../../../schemas/protocol-schemas.js';

export const auditRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/audit', {
    config: { role: 'admin' },
    schema: {
      tags: ['audit'], summary: 'The audit trail: who did what, where, when, from which address (append-only)',
      querystring: Type.Object({
        user: Type.Optional(Type.String({ maxLength: 128 })), action: Type.Optional(Type.String({ maxLength: 64 })),
        target: Type.Optional(Type.String({ maxLength: 64 })), outcome: Type.Optional(Type.Union([Type.Literal('ok'), Type.Literal('denied'), Type.Literal('failed')])),
        q: Type.Optional(Type.String({ maxLength: 256, description: 'Search text in the action, target and details (words match word prefixes, "quoted phrases" adjacent words)' })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })), cursor: Type.Optional(Type.String({ maxLength: 32 })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ entries: Type.Array(AuditEntryRef), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...errors(400, 401, 403) },
    },
  }, async (request) => {
    const { user, action, target, outcome, q, limit = 100, cursor } = request.query;
    if (cursor !== undefined && !/^\d{1,15}$/.test(cursor)) throw new ApiError(400, ErrorCode.badRequest, 'cursor is not one this server gave');
    const page = await app.auditLog.search({ username: user, action, target, outcome, q, limit, beforeId: cursor ? Number(cursor) : undefined });
    return { entries: page.entries, next_cursor: page.more ? String(page.entries.at(-1)!.id) : null };
  });
};
