import crypto from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { ApiError, notFound } from '../../../errors.js';
import { requireAdmin } from '../../../plugins/audit-trail.js';
import type { CommandSpec, CommandStatus, CommandView } from '../../../repositories/commands-repository.js';
import { errors } from '../../../schemas/common.js';
import { CommandRef } from '../../../schemas/protocol-schemas.js';


const ExecSpec = {
  command: Type.Optional(Type.String({ minLength: 1, maxLength: 65536, description: 'Run through /bin/sh -c' })),
  argv: Type.Optional(Type.Array(Type.String({ maxLength: 65536 }), { minItems: 1, maxItems: 1024, description: 'Run without a shell' })),
  cwd: Type.Optional(Type.String({ maxLength: 4096 })),
  env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String({ maxLength: 65536 }), { additionalProperties: false })),
  user: Type.Optional(Type.String({ maxLength: 64, description: 'Run as this user (the agent must run as root)' })),
  stdin: Type.Optional(Type.String({ maxLength: 1024 * 1024 })),
  timeout_s: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Default 60 s; the server caps it (DVIC_EXEC_MAX_TIMEOUT_S)' })),
  queue_ttl_s: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 7 * 86_400, description: 'If the node is offline, queue the command until it comes back, for at most this long' })),
};
const ExecBody = Type.Object(ExecSpec, { additionalProperties: false });
const FanOutBody = Type.Object({
  targets: Type.Object({
    nodes: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 10_000, description: 'Node ids or names' })),
    label: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,63}=.{0,256}$', description: 'key=value: every node with this label' })),
    all: Type.Optional(Type.Boolean({ description: 'Every online node' })),
  }, { additionalProperties: false }),
  ...ExecSpec,
}, { additionalProperties: false });

const toCursor = (c: CommandView) => Buffer.from(`${c.created_at}:${c.id}`).toString('base64url');
function fromCursor(cursor: string) {
  const [at, id] = Buffer.from(cursor, 'base64url').toString().split(':');
  if (!Number.isSafeInteger(Number(at)) || !id) throw new ApiError(400, ErrorCode.badRequest, 'cursor is not one this server gave');
  return { createdAt: Number(at), id };
}

export const commandsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { registry, commands, config } = app.services;
  const requester = (request: FastifyRequest) => ({ userId: request.user!.id, username: request.user!.username, ip: request.ip });

  function specOf(body: Static<typeof ExecBody>): CommandSpec {
    if ((body.command === undefined) === (body.argv === undefined)) {
      throw new ApiError(400, ErrorCode.badRequest, 'give either "command" (a shell string) or "argv" (a list), not both');
    }
    const timeout = body.timeout_s ?? config.execDefaultTimeoutS;
    if (timeout > config.execMaxTimeoutS) throw new ApiError(400, ErrorCode.badRequest, `timeout_s is over the maximum of ${config.execMaxTimeoutS} s`);
    const { queue_ttl_s: _queue, ...spec } = body;
    return { ...spec, timeout_s: timeout };
  }

  app.post('/nodes/:id/exec', {
    config: { audit: 'exec' },
    preHandler: requireAdmin,
    schema: {
      tags: ['commands'], summary: 'Run a command on a node; answers at once with its id',
      description: 'Output streams over /api/v1/live (commands.subscribe); the result is at GET /api/v1/commands/{id}. An offline node is an error (409) unless queue_ttl_s is given.',
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }), body: ExecBody,
      response: { 202: Type.Object({ id: Type.String(), status: Type.String() }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const node = registry.find(request.params.id);
    if (!node) throw notFound(`node "${request.params.id}"`);
    const spec = specOf(request.body);
    const queueTtlMs = request.body.queue_ttl_s && request.body.queue_ttl_s * 1000;
    if (!queueTtlMs && !app.services.agentHub.isConnected(node.id)) {
      request.audit('exec', node.id, 'failed', { command: spec.command ?? spec.argv, reason: 'node offline' });
      throw new ApiError(409, ErrorCode.nodeOffline, `node "${node.name}" is offline (add queue_ttl_s to run it when it comes back)`);
    }
    const [command] = commands.start([node.id], spec, requester(request), { queueTtlMs });
    request.audit('exec', node.id, 'ok', { command_id: command!.id, command: command!.command });
    return reply.code(202).send({ id: command!.id, status: command!.status });
  });

  app.post('/exec', {
    config: { audit: 'exec' },
    preHandler: requireAdmin,
    schema: {
      tags: ['commands'], summary: 'Run a command on several nodes at once (by ids or names, label, or all online)',
      body: FanOutBody,
      response: { 202: Type.Object({ batch_id: Type.String(), commands: Type.Array(CommandRef) }), ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const { targets, ...rest } = request.body;
    const spec = specOf(rest);
    const nodeIds = new Set<string>();
    for (const ref of targets.nodes ?? []) {
      const node = registry.find(ref);
      if (!node) throw notFound(`node "${ref}"`);
      nodeIds.add(node.id);
    }
    if (targets.label) {
      const [key, value] = [targets.label.slice(0, targets.label.indexOf('=')), targets.label.slice(targets.label.indexOf('=') + 1)];
      for (const n of registry.list()) if (n.labels[key] === value && n.status !== 'revoked') nodeIds.add(n.id);
    }
    if (targets.all) for (const n of registry.list()) if (n.status === 'online') nodeIds.add(n.id);
    if (nodeIds.size === 0) throw new ApiError(400, ErrorCode.badRequest, 'no node matches these targets');
    const batchId = crypto.randomUUID();
    const started = commands.start([...nodeIds], spec, requester(request), { batchId, queueTtlMs: rest.queue_ttl_s && rest.queue_ttl_s * 1000 });
    request.audit('exec', batchId, 'ok', { batch_id: batchId, nodes: [...nodeIds], command: started[0]!.command });
    return reply.code(202).send({ batch_id: batchId, commands: started.map((c) => ({ ...c, stdout: '', stderr: '' })) });
  });

  app.get('/commands', {
    schema: {
      tags: ['commands'], summary: 'Command history, newest first (without output)',
      querystring: Type.Object({
        node: Type.Optional(Type.String({ maxLength: 64 })), batch: Type.Optional(Type.String({ maxLength: 64 })),
        user: Type.Optional(Type.String({ maxLength: 128 })), status: Type.Optional(Type.String({ maxLength: 16 })),
        q: Type.Optional(Type.String({ maxLength: 256, description: 'Text in the command' })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })), cursor: Type.Optional(Type.String({ maxLength: 200 })),
      }),
      response: { 200: Type.Object({ commands: Type.Array(CommandRef), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...errors(400, 401, 404) },
    },
  }, async (request) => {
    const { node, batch, user, status, q, limit = 50, cursor } = request.query;
    const nodeId = node ? registry.find(node)?.id : undefined;
    if (node && !nodeId) throw notFound(`node "${node}"`);
    const page = app.services.commandsRepository.search({
      nodeId, batchId: batch, user, status: status as CommandStatus | undefined, q, limit, before: cursor ? fromCursor(cursor) : undefined,
    });
    const views = page.commands.map((c) => ({ ...(commands.get(c.id) ?? c), stdout: '', stderr: '' }));
    return { commands: views, next_cursor: page.more ? toCursor(views.at(-1)!) : null };
  });

  app.get('/commands/:id', {
    schema: {
      tags: ['commands'], summary: 'A command with its status, output so far and result',
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      response: { 200: Type.Object({ command: CommandRef }), ...errors(401, 404) },
    },
  }, async (request) => {
    const command = commands.get(request.params.id);
    if (!command) throw notFound(`command ${request.params.id}`);
    return { command };
  });

  app.post('/commands/:id/cancel', {
    config: { audit: 'exec.cancel' },
    preHandler: requireAdmin,
    schema: {
      tags: ['commands'], summary: 'Cancel a queued or running command: its whole process group is killed',
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      response: { 202: Type.Object({ command: CommandRef }), ...errors(401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const command = commands.get(request.params.id);
    if (!command) throw notFound(`command ${request.params.id}`);
    if (!commands.cancel(command.id)) throw new ApiError(409, ErrorCode.conflict, `command already ended (${command.status})`);
    request.audit('exec.cancel', command.id, 'ok', { node_id: command.node_id });
    return reply.code(202).send({ command: commands.get(command.id)! });
  });
};
