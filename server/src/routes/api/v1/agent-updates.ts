import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { notFound } from '../../../errors.js';
import { errors } from '../../../schemas/common.js';
import { AgentReleaseRef, AgentUpdateRef } from '../../../schemas/protocol-schemas.js';
import { TargetsSchema } from '../../../schemas/targets.js';
import { requester } from './requester.js';

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const StartBody = Type.Object({
  targets: TargetsSchema,
  canary: Type.Optional(Type.Boolean({ default: true, description: 'Update the first node alone; the rest only once it is healthy (default true)' })),
  force: Type.Optional(Type.Boolean({ description: 'Also install over a newer agent (a downgrade)' })),
  max_parallel: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'At most this many nodes at a time (default 5)' })),
}, { additionalProperties: false });

/** Agent self-update: the agent the server ships, and rollouts of it to nodes. */
export const agentUpdatesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { agentUpdates } = app;

  app.get('/agent-release', {
    schema: {
      tags: ['agent-updates'], summary: 'The agent this server ships (nodes on an older version are behind)',
      response: { 200: Type.Object({ agent: AgentReleaseRef }), ...errors(401) },
    },
  }, async () => {
    const { version, sha256, size } = app.agentRelease();
    return { agent: { version, sha256, size } };
  });

  app.post('/agent-updates', {
    config: { role: 'operator', audit: 'agent-update' },
    schema: {
      tags: ['agent-updates'], summary: 'Update the agent of nodes (ids or names, label, or all online) to the shipped version',
      description: 'Answers at once; follow it at GET /api/v1/agent-updates/{id}. Each node: download over its own link, verify sha256 and signature, selftest, switch, restart, then healthy or rolled back.',
      body: StartBody,
      response: { 202: Type.Object({ id: Type.String(), update: AgentUpdateRef }), ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const update = await agentUpdates.start(request.body, requester(request));
    reply.code(202);
    return { id: update.id, update };
  });

  app.get('/agent-updates', {
    schema: {
      tags: ['agent-updates'], summary: 'Agent updates, newest first (the last 200)',
      response: { 200: Type.Object({ updates: Type.Array(AgentUpdateRef) }), ...errors(401) },
    },
  }, async () => ({ updates: await agentUpdates.list() }));

  app.get('/agent-updates/:id', {
    schema: {
      tags: ['agent-updates'], summary: "An agent update with each node's step and result",
      params: IdParams, response: { 200: Type.Object({ update: AgentUpdateRef }), ...errors(401, 404) },
    },
  }, async (request) => {
    const update = await agentUpdates.get(request.params.id);
    if (!update) throw notFound(`agent update ${request.params.id}`);
    return { update };
  });

  for (const action of ['pause', 'resume', 'cancel'] as const) {
    app.post(`/agent-updates/:id/${action}`, {
      config: { role: 'operator', audit: `agent-update.${action}` },
      schema: {
        tags: ['agent-updates'],
        summary: { pause: 'Pause: running nodes finish, no new node starts', resume: 'Resume a paused update', cancel: 'Cancel: nodes not started are not updated' }[action],
        params: IdParams, response: { 200: Type.Object({ update: AgentUpdateRef }), ...errors(401, 403, 404, 409) },
      },
    }, (request) => ({ update: agentUpdates.control(request.params.id, action) }));
  }
};
