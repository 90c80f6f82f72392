import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { errors } from '../../../schemas/common.js';
import { DeploymentRef } from '../../../schemas/protocol-schemas.js';
import { TargetsSchema } from '../../../schemas/targets.js';

/** Optional settings may also be null (as GET answers them), meaning not set; null comes first, as Ajv's coercion would turn it into "" for a string. */
const DeploymentBody = Type.Object({
  artifact: Type.String({ maxLength: 64, description: 'The artifact id' }),
  targets: TargetsSchema,
  path: Type.String({ minLength: 2, maxLength: 4096, description: 'Destination on each node, under its allowed roots (default /opt/dvic-demos/)' }),
  extract: Type.Optional(Type.Boolean({ description: 'Unpack a .tar.gz or .zip into a directory at path (default false: the file itself goes to path)' })),
  mode: Type.Optional(Type.Union([Type.Null(), Type.String({ pattern: '^[0-7]{3,4}$', description: 'Octal mode of the file (or of the directory extracted)' })])),
  owner: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 65, pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$', description: 'user or user:group, applied to everything deployed' })])),
  pre_command: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 65536, description: 'Run through /bin/sh -c before the swap (e.g. systemctl stop my-demo); failing stops the deploy' })])),
  post_command: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 65536, description: 'Run through /bin/sh -c after the swap (e.g. systemctl restart my-demo)' })])),
  max_parallel: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Nodes at once (default DVIC_DEPLOY_MAX_PARALLEL)' })),
}, { additionalProperties: false });
const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const Answer = { 202: Type.Object({ id: Type.String(), deployment: DeploymentRef }), ...errors(400, 401, 403, 404, 409) };

export const deploymentsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { deployments } = app;

  app.post('/deployments', {
    config: { role: 'operator', audit: 'deploy' },
    schema: {
      tags: ['deploy'], summary: 'Deploy an artifact to nodes; answers at once with its id',
      description: 'Progress per node at GET /api/v1/deployments/{id}: step, bytes done and result.',
      body: DeploymentBody, response: Answer,
    },
  }, async (request, reply) => {
    const deployment = await deployments.create(request.body, request.user!.username);
    reply.code(202);
    return { id: deployment.id, deployment };
  });

  app.get('/deployments', {
    schema: {
      tags: ['deploy'], summary: 'Deployments, newest first',
      querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })) }, { additionalProperties: false }),
      response: { 200: Type.Object({ deployments: Type.Array(DeploymentRef) }), ...errors(400, 401) },
    },
  }, async (request) => ({ deployments: await deployments.list(request.query.limit ?? 50) }));

  app.get('/deployments/:id', {
    schema: {
      tags: ['deploy'], summary: 'A deployment with each node\'s step, bytes done and result',
      params: IdParams, response: { 200: Type.Object({ deployment: DeploymentRef }), ...errors(401, 404) },
    },
  }, async (request) => ({ deployment: await deployments.get(request.params.id) }));

  for (const [action, summary] of [
    ['rollback', 'Put the previous version back on every node this deployment reached'],
    ['cancel', 'Stop a running deployment: nodes not started never start, running ones stop before their swap'],
    ['pause', 'No further node starts until resumed (running ones finish)'],
    ['resume', 'Continue a paused deployment'],
  ] as const) {
    app.post(`/deployments/:id/${action}`, {
      config: { role: 'operator', audit: `deploy.${action}` },
      schema: { tags: ['deploy'], summary, params: IdParams, response: Answer },
    }, async (request, reply) => {
      const deployment = await deployments[action](request.params.id);
      reply.code(202);
      return { id: deployment.id, deployment };
    });
  }
};
