import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { ApiError, notFound } from '../../../errors.js';
import { LOG_LEVELS, levelNumber, type StoredLog } from '../../../repositories/logs-repository.js';
import { errors } from '../../../schemas/common.js';
import { LogRecordRef } from '../../../schemas/protocol-schemas.js';
import { parseTimeParam } from './time-param.js';


const encodeCursor = (r: StoredLog) => Buffer.from(`${r.ts}:${r.id}`).toString('base64url');

function decodeCursor(cursor: string): { ts: number; id: number } {
  const [ts, id] = Buffer.from(cursor, 'base64url').toString().split(':').map(Number);
  if (!Number.isSafeInteger(ts) || !Number.isSafeInteger(id)) throw new ApiError(400, ErrorCode.badRequest, 'cursor is not one this server gave');
  return { ts: ts!, id: id! };
}

export const logsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/logs', {
    schema: {
      tags: ['logs'], summary: 'Search stored logs, newest first',
      description: 'Filters combine. `q` is full text (every word must appear, prefix match). `since`/`until` take an RFC 3339 time, epoch milliseconds, or a duration back from now (`10m`, `2h`, `7d`). Pass `next_cursor` back as `cursor` for the next page.',
      querystring: Type.Object({
        node: Type.Optional(Type.String({ maxLength: 64, description: 'Node id or name' })),
        demo: Type.Optional(Type.String({ maxLength: 128 })),
        source: Type.Optional(Type.Union([Type.Literal('demo'), Type.Literal('system')])),
        level: Type.Optional(Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { description: 'Minimum level' })),
        q: Type.Optional(Type.String({ maxLength: 256 })),
        since: Type.Optional(Type.String({ maxLength: 40 })),
        until: Type.Optional(Type.String({ maxLength: 40 })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        cursor: Type.Optional(Type.String({ maxLength: 200 })),
      }),
      response: { 200: Type.Object({ records: Type.Array(LogRecordRef), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...errors(400, 401, 404) },
    },
  }, async (request) => {
    const { node, demo, source, level, q, since, until, limit = 100, cursor } = request.query;
    const { registry, logs } = app.services;
    let nodeId: string | undefined;
    if (node) {
      nodeId = registry.get(node)?.id ?? registry.list().find((n) => n.name === node)?.id;
      if (!nodeId) throw notFound(`node "${node}"`);
    }
    const now = Date.now();
    const { records, more } = logs.search({
      nodeId, demo, source, q, limit,
      minLevel: level ? levelNumber(level) : undefined,
      since: since === undefined ? undefined : parseTimeParam('since', since, now),
      until: until === undefined ? undefined : parseTimeParam('until', until, now),
      before: cursor ? decodeCursor(cursor) : undefined,
    });
    return { records, next_cursor: more ? encodeCursor(records.at(-1)!) : null };
  });
};
