import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorCode, FIELD_FILTER_PATTERN, fieldFilters, LOG_LEVELS, levelNumber } from '@dvic/protocol';
import { ApiError } from '../../../errors.js';
import { errors } from '../../../schemas/common.js';
import { LogRecordRef } from '../../../schemas/protocol-schemas.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { parseTimeParam } from './time-param.js';

export const logsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/logs', {
    schema: {
      tags: ['logs'], summary: 'Search stored logs, newest first',
      description: 'Filters combine. `field.<name>=<value>` keeps records whose structured field has that value (e.g. `field.camera=usb-0`; numbers, true, false and null by their text). `q` is search text: words match word prefixes, "quoted phrases" adjacent words, case- and accent-insensitive (the same in the live tail, commands and audit). `since`/`until` take an RFC 3339 time, epoch milliseconds, or a duration back from now (`10m`, `2h`, `7d`). Pass `next_cursor` back as `cursor` for the next page.',
      querystring: Type.Object({
        node: Type.Optional(Type.String({ maxLength: 64, description: 'Node id, name or id prefix' })),
        demo: Type.Optional(Type.String({ maxLength: 128 })),
        source: Type.Optional(Type.Union([Type.Literal('demo'), Type.Literal('system')])),
        level: Type.Optional(Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { description: 'Minimum level' })),
        q: Type.Optional(Type.String({ maxLength: 256 })),
        since: Type.Optional(Type.String({ maxLength: 40 })),
        until: Type.Optional(Type.String({ maxLength: 40 })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        cursor: Type.Optional(Type.String({ maxLength: 200 })),
      }, {
        additionalProperties: false, maxProperties: 24,
        // field.<name>=<value>: records whose structured field has that value (several combine).
        patternProperties: { [FIELD_FILTER_PATTERN]: Type.String({ maxLength: 256 }) },
      }),
      response: { 200: Type.Object({ records: Type.Array(LogRecordRef), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...errors(400, 401, 404, 409) },
    },
  }, async (request) => {
    const { node, demo, source, level, q, since, until, limit = 100, cursor } = request.query;
    const now = Date.now();
    const { records, more } = await app.logStore.search({
      nodeId: node === undefined ? undefined : app.nodeRegistry.resolve(node).id,
      demo, source, q, limit, fields: fieldFilters(request.query),
      minLevel: level ? levelNumber(level) : undefined,
      since: since === undefined ? undefined : parseTimeParam('since', since, now),
      until: until === undefined ? undefined : parseTimeParam('until', until, now),
      before: cursor === undefined ? undefined : decodeCursor(cursor, (ts, id) => {
        if (!Number.isSafeInteger(Number(id))) throw new ApiError(400, ErrorCode.badRequest, 'cursor is not one this server gave');
        return { ts: Number(ts), id: Number(id) };
      }),
    });
    const last = records.at(-1);
    return { records, next_cursor: more && last ? encodeCursor(last.ts, last.id) : null };
  });
};
