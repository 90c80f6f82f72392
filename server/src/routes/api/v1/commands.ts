import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { bundledSchema, type CommandStatus, type CommandView } from '@dvic/protocol';
import { notFound } from '../../../errors.js';
import { hasRole } from '../../../plugins/route-guards.js';
import { errors } from '../../../schemas/common.js';
import { CommandRef } from '../../../schemas/protocol-schemas.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { requester } from './requester.js';
import { TargetsSchema } from '../../../schemas/targets.js';

const ExecSpec = {
  command: Type.Optional(Type.String({ minLength: 1, maxLength: 65536, description: 'Run through /bin/sh -c' })),
  argv: Type.Optional(Type.Array(Type.String({ maxLength: 65536 }), { minItems: 1, maxItems: 1024, description: 'Run without a shell' })),
  cwd: Type.Optional(Type.String({ maxLength: 4096 })),
  env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String({ maxLength: 65536 }), { additionalProperties: false })),
  user: Type.Optional(Type.String({ maxLength: 64, description: 'Run as this user (the agent must run as root)' })),
  stdin: Type.Optional(Type.String({ maxLength: 1024 * 1024 })),
  timeout_s: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 86_400, description: 'Default 60 s; the server caps it (DVIC_EXEC_MAX_TIMEOUT_S)' })),
  queue_ttl_s: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 7 * 86_400, description: 'If the node is offline, queue the command until it comes back, for at most this long' })),
};
const ExecBody = Type.Object(ExecSpec, { additionalProperties: false });
const FanOutBody = Type.Object({
  targets: TargetsSchema,
  ...ExecSpec,
}, { additionalProperties: false });
/** The status filter: the statuses of the command schema (protocol/schemas/api/command.json). */
const CommandStatusParam = Type.Unsafe<CommandStatus>(bundledSchema('api/command.json', '/properties/status'));

/** Output is for those who may run commands (a viewer sees that a command ran, not what it printed). */
const forReader = (request: FastifyRequest, command: CommandView): CommandView =>
  hasRole(request.user, 'operator') ? command : { ...command, stdout: '', stderr: '' };

export const commandsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { commands } = app;

  app.post('/nodes/:id/exec', {
    config: { role: 'operator', audit: 'exec' },
    schema: {
      tags: ['commands'], summary: 'Run a command on a node; answers at once with its id',
      description: 'Output streams over /api/v1/live (commands.subscribe); the result is at GET /api/v1/commands/{id}. An offline node is an error (409) unless queue_ttl_s is given.',
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }), body: ExecBody,
      response: { 202: Type.Object({ id: Type.String(), status: Type.String() }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const command = await commands.runOn(request.params.id, request.body, requester(request));
    reply.code(202);
    return { id: command.id, status: command.status };
  });

  app.post('/exec', {
    config: { role: 'operator', audit: 'exec' },
    schema: {
      tags: ['commands'], summary: 'Run a command on several nodes at once (by ids or names, label, or all online)',
      body: FanOutBody,
      response: { 202: Type.Object({ batch_id: Type.String(), commands: Type.Array(CommandRef) }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const { targets, ...spec } = request.body;
    const batch = await commands.fanOut(targets, spec, requester(request));
    reply.code(202);
    return batch;
  });

  app.get('/commands', {
    schema: {
      tags: ['commands'], summary: 'Command history, newest first (without output)',
      querystring: Type.Object({
        node: Type.Optional(Type.String({ maxLength: 64 })), batch: Type.Optional(Type.String({ maxLength: 64 })),
        user: Type.Optional(Type.String({ maxLength: 128 })), status: Type.Optional(CommandStatusParam),
        q: Type.Optional(Type.String({ maxLength: 256, description: 'Search text in the command: words match word prefixes, "quoted phrases" adjacent words' })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })), cursor: Type.Optional(Type.String({ maxLength: 200 })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ commands: Type.Array(CommandRef), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...errors(400, 401, 404, 409) },
    },
  }, async (request) => {
    const { node, batch, user, status, q, limit = 50, cursor } = request.query;
    const before = cursor === undefined ? undefined : decodeCursor(cursor, (at, id) => ({ createdAt: Number(at), id }));
    const page = await commands.search({ node, batchId: batch, user, status, q, limit, before });
    const last = page.commands.at(-1);
    return { commands: page.commands, next_cursor: page.more && last ? encodeCursor(last.created_at, last.id) : null };
  });

  app.get('/commands/:id', {
    schema: {
      tags: ['commands'], summary: 'A command with its status, result and (for operators and admins) its output',
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      response: { 200: Type.Object({ command: CommandRef }), ...errors(401, 404) },
    },
  }, async (request) => {
    const command = await commands.get(request.params.id);
    if (!command) throw notFound(`command ${request.params.id}`);
    return { command: forReader(request, command) };
  });

  app.post('/commands/:id/cancel', {
    config: { role: 'operator', audit: 'exec.cancel' },
    schema: {
      tags: ['commands'], summary: 'Cancel a queued or running command: its whole process group is killed',
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      response: { 202: Type.Object({ command: CommandRef }), ...errors(401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const command = await commands.cancel(request.params.id);
    reply.code(202);
    return { command };
  });
};

