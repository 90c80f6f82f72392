import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../../../errors.js';
import { requireAdmin } from '../../../plugins/audit-trail.js';
import { errors } from '../../../schemas/common.js';

const AuditEntryView = Type.Object({
  id: Type.Integer(), at: Type.Integer(), user_id: Type.Union([Type.Integer(), Type.Null()]), username: Type.Union([Type.String(), Type.Null()]),
  source_ip: Type.Union([Type.String(), Type.Null()]), action: Type.String(), target: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.Union([Type.Literal('ok'), Type.Literal('denied'), Type.Literal('failed')]),
  details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
});

export const auditRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/audit', {
    preHandler: requireAdmin,
    schema: {
      tags: ['audit'], summary: 'The audit trail: who did what, where, when, from which address (append-only)',
      querystring: Type.Object({
        user: Type.Optional(Type.String({ maxLength: 128 })), action: Type.Optional(Type.String({ maxLength: 64 })),
        target: Type.Optional(Type.String({ maxLength: 64 })), outcome: Type.Optional(Type.String({ maxLength: 16 })),
        q: Type.Optional(Type.String({ maxLength: 256 })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })), cursor: Type.Optional(Type.String({ maxLength: 32 })),
      }),
      response: { 200: Type.Object({ entries: Type.Array(AuditEntryView), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...errors(400, 401, 403) },
    },
  }, async (request) => {
    const { user, action, target, outcome, q, limit = 100, cursor } = request.query;
    if (cursor !== undefined && !/^\d+$/.test(cursor)) throw new ApiError(400, ErrorCode.badRequest, 'cursor is not one this server gave');
    const page = app.services.audit.search({ username: user, action, target, outcome, q, limit, beforeId: cursor ? Number(cursor) : undefined });
    return { entries: page.entries, next_cursor: page.more ? String(page.entries.at(-1)!.id) : null };
  });
};
