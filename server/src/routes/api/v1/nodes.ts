import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { ApiError, notFound } from '../../../errors.js';
import { NodeNameTakenError } from '../../../live/node-registry.js';
import { requireAdmin } from '../../../plugins/audit-trail.js';
import { generateNodeKeypair } from '../../../services/node-keys.js';
import { errors } from '../../../schemas/common.js';
import { AgentConfigSchema, Labels, NodeName } from '../../../schemas/node.js';
import { AgentConfigFileRef, DemoRef, NodeDetailRef, NodeRef } from '../../../schemas/protocol-schemas.js';

const NodeParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'Node id or unique name' }) });

export const nodesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { registry, demos } = app.services;

  /** A node by id or by exact name. */
  const find = (ref: string) => {
    const byId = registry.view(ref);
    if (byId) return byId;
    const byName = registry.list().find((n) => n.name === ref);
    if (!byName) throw notFound(`node "${ref}"`);
    return byName;
  };

  app.get('/nodes', {
    schema: { tags: ['nodes'], summary: 'Every node with its live status and latest hardware state', response: { 200: Type.Object({ nodes: Type.Array(NodeRef) }), ...errors(401) } },
  }, async () => ({ nodes: registry.list() }));

  app.get('/nodes/:id', {
    schema: {
      tags: ['nodes'], summary: 'One node, with its demo processes', params: NodeParams,
      response: { 200: Type.Object({ node: NodeDetailRef }), ...errors(401, 404) },
    },
  }, async (request) => {
    const node = find(request.params.id);
    return { node: { ...node, demos: demos.list(node.id) } };
  });

  app.get('/demos', {
    schema: {
      tags: ['demos'], summary: 'Demo processes: alive or dead, lines and errors, of one node or all',
      querystring: Type.Object({ node: Type.Optional(Type.String({ maxLength: 64, description: 'Node id or name' })) }),
      response: { 200: Type.Object({ demos: Type.Array(DemoRef) }), ...errors(401, 404) },
    },
  }, async (request) => {
    const nodes = request.query.node ? [find(request.query.node)] : registry.list();
    return { demos: nodes.flatMap((n) => demos.list(n.id)) };
  });

  app.post('/nodes', {
    config: { audit: 'node.create' },
    preHandler: requireAdmin,
    schema: {
      tags: ['nodes'], summary: 'Enroll a node: returns its agent config file, private key included (shown once)',
      description: 'Save `config` as /etc/dvic/agent.json (mode 0600) on the node and start the agent.',
      body: Type.Object({ name: NodeName, labels: Type.Optional(Labels) }),
      response: { 201: Type.Object({ node: NodeRef, config: AgentConfigFileRef }), ...errors(400, 401, 409) },
    },
  }, async (request, reply) => {
    const keys = generateNodeKeypair();
    const node = createOrConflict(() => registry.create({ name: request.body.name, labels: request.body.labels, publicKeyPem: keys.publicKeyPem }));
    request.audit('node.create', node.id, 'ok', { name: node.name });
    return reply.code(201).send({
      node: registry.view(node.id)!,
      config: { server_url: agentUrl(request, app.services.config.publicUrl), node_id: node.id, private_key: keys.privateKeyPem, metrics_interval_s: app.services.config.metricsIntervalS },
    });
  });

  app.patch('/nodes/:id', {
    config: { audit: 'node.update' },
    preHandler: requireAdmin,
    schema: {
      tags: ['nodes'], summary: 'Rename or relabel a node', params: NodeParams,
      body: Type.Object({ name: Type.Optional(NodeName), labels: Type.Optional(Labels) }),
      response: { 200: Type.Object({ node: NodeRef }), ...errors(400, 401, 404, 409) },
    },
  }, async (request) => {
    const node = find(request.params.id);
    const updated = createOrConflict(() => registry.update(node.id, request.body)!);
    request.audit('node.update', node.id, 'ok', { ...request.body });
    return { node: updated };
  });

  app.patch('/nodes/:id/agent-config', {
    config: { audit: 'node.agent-config' },
    preHandler: requireAdmin,
    schema: {
      tags: ['nodes'], summary: "Change a node's agent settings (e.g. metrics_interval_s), pushed at once when it is online",
      description: 'Settings are kept and sent again on every reconnect. `pushed` tells whether the agent got them now.',
      params: NodeParams, body: AgentConfigSchema,
      response: { 200: Type.Object({ agent_config: AgentConfigSchema, pushed: Type.Boolean() }), ...errors(400, 401, 404) },
    },
  }, async (request) => {
    const node = find(request.params.id);
    const agentConfig = registry.updateAgentConfig(node.id, request.body)!;
    const pushed = app.services.agentHub.sendTo(node.id, { type: 'config.push', data: request.body });
    request.audit('node.agent-config', node.id, 'ok', { ...request.body, pushed });
    return { agent_config: agentConfig, pushed };
  });

  app.post('/nodes/:id/revoke', {
    config: { audit: 'node.revoke' },
    preHandler: requireAdmin,
    schema: {
      tags: ['nodes'], summary: 'Revoke a node: its agent is disconnected and refused from now on', params: NodeParams,
      response: { 200: Type.Object({ node: NodeRef }), ...errors(401, 404) },
    },
  }, async (request) => {
    const node = find(request.params.id);
    request.audit('node.revoke', node.id, 'ok', { name: node.name });
    return { node: registry.revoke(node.id)! };
  });
};

function createOrConflict<T>(action: () => T): T {
  try {
    return action();
  } catch (err) {
    if (err instanceof NodeNameTakenError) throw new ApiError(409, ErrorCode.conflict, err.message);
    throw err;
  }
}

/** The agent endpoint as the caller reached this server, unless DVIC_PUBLIC_URL says otherwise. */
function agentUrl(request: FastifyRequest, publicUrl: string | undefined): string {
  const base = publicUrl ?? `${request.protocol}://${request.host}`;
  return `${base.replace(/^http/, 'ws')}/api/v1/agent`;
}
