import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { DEFAULT_GRACE_S, DEFAULT_PERIOD_S } from '../../../live/device-registry.js';
import { errors } from '../../../schemas/common.js';
import { Labels, NodeName } from '../../../schemas/node.js';
import { DeviceDetailRef, DevicePingRef, DeviceRef } from '../../../schemas/protocol-schemas.js';

const MAX_PERIOD_S = 31 * 86_400;
const DeviceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'Device id or name' }) });
const Settings = {
  period_s: Type.Integer({ minimum: 1, maximum: MAX_PERIOD_S, description: `Expected time between pings (default ${DEFAULT_PERIOD_S})` }),
  grace_s: Type.Integer({ minimum: 0, maximum: MAX_PERIOD_S, description: `Extra time after the period before it is down (default ${DEFAULT_GRACE_S})` }),
  labels: Labels,
  node: Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()], { description: 'The node it belongs to (id or name), or null' }),
};
const Created = Type.Object({ device: DeviceRef, token: Type.String({ description: 'The device token: shown once, only its hash is kept' }) });

export const devicesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { deviceRegistry: registry, nodeRegistry: nodes } = app;
  const nodeId = (ref: string | null | undefined) => (ref === undefined ? undefined : ref === null ? null : nodes.resolve(ref).id);

  app.get('/devices', {
    schema: { tags: ['devices'], summary: 'Every keepalive device with its status', response: { 200: Type.Object({ devices: Type.Array(DeviceRef) }), ...errors(401) } },
  }, async () => ({ devices: registry.list() }));

  app.get('/devices/:id', {
    schema: {
      tags: ['devices'], summary: 'One device: status, last body, uptime over 24 h and 7 d, latest status changes', params: DeviceParams,
      response: { 200: Type.Object({ device: DeviceDetailRef }), ...errors(401, 404) },
    },
  }, async (request) => ({ device: await registry.detail(request.params.id) }));

  app.get('/devices/:id/pings', {
    schema: {
      tags: ['devices'], summary: 'A device\'s pings, newest first (the last 1,000 are kept), with their numbers and logs', params: DeviceParams,
      querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })), before: Type.Optional(Type.Integer({ minimum: 1, description: 'Pings with a smaller id (paging)' })) }),
      response: { 200: Type.Object({ pings: Type.Array(DevicePingRef) }), ...errors(401, 404) },
    },
  }, async (request) => ({ pings: await registry.pingHistory(request.params.id, request.query.limit ?? 100, request.query.before) }));

  app.post('/devices', {
    config: { role: 'operator', audit: 'device.create' },
    schema: {
      tags: ['devices'], summary: 'Add a device: answers its token once (only its hash is kept)',
      body: Type.Object({ name: NodeName, period_s: Type.Optional(Settings.period_s), grace_s: Type.Optional(Settings.grace_s), labels: Type.Optional(Labels), node: Type.Optional(Settings.node) }, { additionalProperties: false }),
      response: { 201: Created, ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const { name, labels, period_s: periodS, grace_s: graceS, node } = request.body;
    reply.code(201);
    return registry.create({ name, labels, periodS, graceS, nodeId: nodeId(node) });
  });

  app.patch('/devices/:id', {
    config: { role: 'operator', audit: 'device.update' },
    schema: {
      tags: ['devices'], summary: 'Rename a device or change its labels, node, period or grace', params: DeviceParams,
      body: Type.Object({ name: Type.Optional(NodeName), period_s: Type.Optional(Settings.period_s), grace_s: Type.Optional(Settings.grace_s), labels: Type.Optional(Labels), node: Type.Optional(Settings.node) }, { additionalProperties: false }),
      response: { 200: Type.Object({ device: DeviceRef }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request) => {
    const { name, labels, period_s: periodS, grace_s: graceS, node } = request.body;
    return { device: await registry.update(registry.resolve(request.params.id).id, { name, labels, periodS, graceS, nodeId: nodeId(node) }) };
  });

  app.post('/devices/:id/pause', {
    config: { role: 'operator', audit: 'device.pause' },
    schema: { tags: ['devices'], summary: 'Pause a device: no late or down until its next ping or a resume', params: DeviceParams, response: { 200: Type.Object({ device: DeviceRef }), ...errors(401, 403, 404) } },
  }, async (request) => ({ device: await registry.pause(request.params.id) }));

  app.post('/devices/:id/resume', {
    config: { role: 'operator', audit: 'device.resume' },
    schema: { tags: ['devices'], summary: 'Resume a paused device: new again until its next ping', params: DeviceParams, response: { 200: Type.Object({ device: DeviceRef }), ...errors(401, 403, 404) } },
  }, async (request) => ({ device: await registry.resume(request.params.id) }));

  app.post('/devices/:id/token', {
    config: { role: 'operator', audit: 'device.token' },
    schema: { tags: ['devices'], summary: 'A new token for a device (shown once); the old one stops working', params: DeviceParams, response: { 200: Created, ...errors(401, 403, 404) } },
  }, async (request) => registry.rotateToken(request.params.id));

  app.delete('/devices/:id', {
    config: { role: 'operator', audit: 'device.remove' },
    schema: { tags: ['devices'], summary: 'Remove a device, its pings and history', params: DeviceParams, response: { 204: Type.Null(), ...errors(401, 403, 404) } },
  }, async (request, reply) => {
    await registry.remove(request.params.id);
    reply.code(204);
    return null;
  });
};
