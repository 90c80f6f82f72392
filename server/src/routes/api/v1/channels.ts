import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Channel } from '@dvic/protocol';
import { Type } from 'typebox';
import { channelChange, channelInput } from '../../../alerts/channel-input.js';
import { testMessage } from '../../../alerts/message.js';
import type { ChannelRecord } from '../../../repositories/alert-channels-repository.js';
import { hasRole } from '../../../plugins/route-guards.js';
import { errors } from '../../../schemas/common.js';
import { AlertDeliveryRef, ChannelEmailRef, ChannelRef } from '../../../schemas/protocol-schemas.js';

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const TYPES = ['webhook', 'discord', 'slack', 'ntfy', 'telegram', 'teams', 'email'] as const;
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));
const Fields = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  url: Nullable(Type.String({ minLength: 1, maxLength: 2048, description: 'webhook, discord, slack, teams: the webhook URL; ntfy: the topic URL; telegram: the Bot API base' })),
  secret: Nullable(Type.String({ minLength: 1, maxLength: 512, description: 'webhook: HMAC key; telegram: bot token; email: SMTP password. Never answered.' })),
  chat_id: Nullable(Type.String({ minLength: 1, maxLength: 64 })),
  email: Type.Optional(Type.Union([ChannelEmailRef, Type.Null()])),
  enabled: Type.Optional(Type.Boolean()),
};

export const channelsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, deliveries } = app.alerts;
  // A chat webhook's URL is itself a credential: only admins see more than its origin.
  const view = (c: ChannelRecord, admin = true): Channel => ({
    id: c.id, type: c.type, name: c.name, url: admin || c.url === null ? c.url : `${new URL(c.url).origin}/…`, enabled: c.enabled, has_secret: c.secret !== null,
    chat_id: c.chatId, email: c.email, created_at: c.createdAt, last_delivery: deliveries.lastOf(c.id),
  });

  app.get('/channels', {
    schema: { tags: ['alerts'], summary: 'Where alerts are sent, each with its last delivery (URLs in full for admins, else their origin)', response: { 200: Type.Object({ channels: Type.Array(ChannelRef) }), ...errors(401) } },
  }, async (request) => ({ channels: config.listChannels().map((c) => view(c, hasRole(request.user, 'admin'))) }));

  app.post('/channels', {
    config: { role: 'admin', audit: 'channel.create' },
    schema: {
      tags: ['alerts'], summary: 'Add a channel: every rule that notifies all channels (the defaults) notifies it too',
      body: Type.Object({ ...Fields, type: Type.Union(TYPES.map((t) => Type.Literal(t))), name: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
      response: { 201: Type.Object({ channel: ChannelRef }), ...errors(400, 401, 403) },
    },
  }, async (request, reply) => {
    reply.code(201);
    return { channel: view(await config.createChannel(channelInput(request.body))) };
  });

  app.patch('/channels/:id', {
    config: { role: 'admin', audit: 'channel.update' },
    schema: {
      tags: ['alerts'], summary: 'Change a channel (a secret set to null is removed)', params: IdParams,
      body: Type.Object(Fields, { additionalProperties: false }), response: { 200: Type.Object({ channel: ChannelRef }), ...errors(400, 401, 403, 404) },
    },
  }, async (request) => ({ channel: view(await config.updateChannel(request.params.id, channelChange(config.channel(request.params.id), request.body))) }));

  app.delete('/channels/:id', {
    config: { role: 'admin', audit: 'channel.delete' },
    schema: { tags: ['alerts'], summary: 'Delete a channel and its delivery log', params: IdParams, response: { 200: Type.Object({ channel: ChannelRef }), ...errors(400, 401, 403, 404) } },
  }, async (request) => {
    const channel = await config.deleteChannel(request.params.id);
    app.sql.afterCommit(() => deliveries.forget(channel.id));
    return { channel: { ...view(channel), last_delivery: null } }; // its delivery log went with it
  });

  app.post('/channels/:id/test', {
    config: { role: 'admin', audit: 'channel.test' },
    schema: {
      tags: ['alerts'], summary: 'Send a test message; answers its delivery (pending): follow it in the delivery log', params: IdParams,
      response: { 202: Type.Object({ delivery: AlertDeliveryRef }), ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const channel = config.channel(request.params.id);
    reply.code(202);
    return { delivery: await deliveries.deliver(channel, testMessage(channel.name, Date.now()), [], { inTransaction: true }) };
  });

  app.get('/channels/:id/deliveries', {
    schema: {
      tags: ['alerts'], summary: 'A channel\'s delivery log, newest first: status code, error, attempts', params: IdParams,
      querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })) }, { additionalProperties: false }),
      response: { 200: Type.Object({ deliveries: Type.Array(AlertDeliveryRef) }), ...errors(400, 401, 404) },
    },
  }, async (request) => {
    config.channel(request.params.id);
    return { deliveries: await deliveries.list(request.params.id, request.query.limit ?? 50) };
  });
};
