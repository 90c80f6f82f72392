import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { nodeLinkOf } from '../../../plugins/node-link.js';
import { changeAgentConfig } from '../../../services/agent-config-push.js';
import { enrollNode } from '../../../services/enrollment.js';
import { serverIdentity } from './enrollment-tokens.js';
import { errors } from '../../../schemas/common.js';
import { AgentConfigSchema, Labels, NodeName } from '../../../schemas/node.js';
import { AgentConfigFileRef, NodeDetailRef, NodeRef } from '../../../schemas/protocol-schemas.js';

const NodeParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'Node id, name, or the start of its id (4 characters at least)' }) });

export const nodesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { nodeRegistry: registry, demoRegistry: demos } = app;

  app.get('/nodes', {
    schema: { tags: ['nodes'], summary: 'Every node with its live status and latest hardware state', response: { 200: Type.Object({ nodes: Type.Array(NodeRef) }), ...errors(401) } },
  }, async () => ({ nodes: registry.list() }));

  app.get('/nodes/:id', {
    schema: {
      tags: ['nodes'], summary: 'One node, with its demo processes',
      description: 'An id prefix several nodes share answers 409 with error.candidates.',
      params: NodeParams, response: { 200: Type.Object({ node: NodeDetailRef }), ...errors(401, 404, 409) },
    },
  }, async (request) => {
    const node = registry.resolve(request.params.id);
    return { node: { ...registry.view(node.id)!, demos: demos.list(node.id) } };
  });

  app.post('/nodes', {
    config: { role: 'admin', audit: 'node.create' },
    schema: {
      tags: ['nodes'], summary: 'Enroll a node: returns its agent config file, private key included (shown once)',
      description: 'Save `config` as /etc/dvic/agent.json (mode 0600) on the node and start the agent.',
      body: Type.Object({ name: NodeName, labels: Type.Optional(Labels) }, { additionalProperties: false }),
      response: { 201: Type.Object({ node: NodeRef, config: AgentConfigFileRef }), ...errors(400, 401, 403, 409) },
    },
  }, async (request, reply) => {
    reply.code(201);
    return enrollNode(registry, request.body, serverIdentity(app, request));
  });

  app.patch('/nodes/:id', {
    config: { role: 'admin', audit: 'node.update' },
    schema: {
      tags: ['nodes'], summary: 'Rename or relabel a node', params: NodeParams,
      body: Type.Object({ name: Type.Optional(NodeName), labels: Type.Optional(Labels) }, { additionalProperties: false }),
      response: { 200: Type.Object({ node: NodeRef }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request) => ({ node: await registry.update(registry.resolve(request.params.id).id, request.body) }));

  app.patch('/nodes/:id/agent-config', {
    config: { role: 'admin', audit: 'node.agent-config' },
    schema: {
      tags: ['nodes'], summary: "Change a node's agent settings (e.g. metrics_interval_s), pushed at once when it is online",
      description: 'Settings are kept and sent again on every reconnect. `pushed` tells whether the agent got them now.',
      params: NodeParams, body: AgentConfigSchema,
      response: { 200: Type.Object({ agent_config: AgentConfigSchema, pushed: Type.Boolean() }), ...errors(400, 401, 403, 404) },
    },
  }, async (request) => changeAgentConfig(registry, nodeLinkOf(app), registry.resolve(request.params.id).id, request.body));

  app.post('/nodes/:id/revoke', {
    config: { role: 'admin', audit: 'node.revoke' },
    schema: {
      tags: ['nodes'], summary: 'Revoke a node: its agent is disconnected and refused from now on', params: NodeParams,
      response: { 200: Type.Object({ node: NodeRef }), ...errors(401, 403, 404) },
    },
  }, async (request) => ({ node: await registry.revoke(registry.resolve(request.params.id).id) }));
};
