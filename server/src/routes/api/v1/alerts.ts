import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorCode, type AlertMute } from '@dvic/protocol';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ApiError } from '../../../errors.js';
import { errors } from '../../../schemas/common.js';
import { AlertMuteRef, AlertRef } from '../../../schemas/protocol-schemas.js';

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const MAX_MUTE_S = 366 * 86_400;
const Duration = Type.Integer({ minimum: 1, maximum: MAX_MUTE_S, description: 'How long, in seconds, from starts_at (or now)' });
const Reason = Type.Union([Type.String({ maxLength: 512 }), Type.Null()]);
const who = (request: FastifyRequest) => request.user?.username ?? null;

/** The end of a mute: ends_at, or starts_at (default now) + duration_s; one of the two is required. */
function muteWindow(body: { starts_at?: number; ends_at?: number; duration_s?: number }): { starts_at: number; ends_at: number } {
  const starts = body.starts_at ?? Date.now();
  return { starts_at: starts, ends_at: body.ends_at ?? starts + (body.duration_s ?? 0) * 1000 };
}

export const alertsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { engine, config } = app.alerts;

  app.get('/alerts', {
    schema: {
      tags: ['alerts'], summary: 'Alerts, newest first: firing now (state=firing), history (state=resolved), or both; per rule with rule',
      querystring: Type.Object({
        state: Type.Optional(Type.Union([Type.Literal('firing'), Type.Literal('resolved')])),
        rule: Type.Optional(Type.String({ format: 'uuid', description: 'Only this rule\'s alerts' })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ alerts: Type.Array(AlertRef) }), ...errors(400, 401) },
    },
  }, async (request) => ({ alerts: await engine.list({ state: request.query.state, ruleId: request.query.rule, limit: request.query.limit ?? 200 }) }));

  app.get('/alerts/:id', {
    schema: { tags: ['alerts'], summary: 'One alert', params: IdParams, response: { 200: Type.Object({ alert: AlertRef }), ...errors(400, 401, 404) } },
  }, async (request) => ({ alert: await engine.get(request.params.id) }));

  app.post('/alerts/:id/ack', {
    config: { role: 'operator', audit: 'alert.ack' },
    schema: {
      tags: ['alerts'], summary: 'Acknowledge a firing alert: it stops repeating (its recovery is still sent)', params: IdParams,
      response: { 200: Type.Object({ alert: AlertRef }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request) => ({ alert: await engine.ack(request.params.id, who(request) ?? 'unknown') }));

  app.post('/alerts/:id/mute', {
    config: { role: 'operator', audit: 'alert.mute' },
    schema: {
      tags: ['alerts'], summary: 'Mute what an alert is about (its demo, node or device) for a while', params: IdParams,
      body: Type.Object({ duration_s: Duration, reason: Type.Optional(Reason) }, { additionalProperties: false }),
      response: { 201: Type.Object({ mute: AlertMuteRef }), ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const s = (await engine.get(request.params.id)).subject;
    reply.code(201);
    return { mute: await config.addMute({
      node_id: s.type === 'device' ? null : s.node_id, demo: s.demo, device_id: s.device_id, rule_id: null,
      ...muteWindow(request.body), reason: request.body.reason ?? null, created_by: who(request),
    }) };
  });

  app.get('/alert-mutes', {
    schema: { tags: ['alerts'], summary: 'Mutes and maintenance windows that have not ended', response: { 200: Type.Object({ mutes: Type.Array(AlertMuteRef) }), ...errors(401) } },
  }, async () => ({ mutes: config.activeMutes() }));

  app.post('/alert-mutes', {
    config: { role: 'operator', audit: 'alert.mute' },
    schema: {
      tags: ['alerts'], summary: 'Mute a node, a demo (on one node, or everywhere), a device or a rule until an end time; a later start makes a maintenance window',
      body: Type.Object({
        node: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Node id or name' })),
        demo: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Demo name (with node: on that node only)' })),
        device: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Device id or name' })),
        rule_id: Type.Optional(Type.String({ format: 'uuid' })),
        starts_at: Type.Optional(Type.Integer({ minimum: 0, description: 'Default: now' })),
        ends_at: Type.Optional(Type.Integer({ minimum: 0 })),
        duration_s: Type.Optional(Duration),
        reason: Type.Optional(Reason),
      }, { additionalProperties: false }),
      response: { 201: Type.Object({ mute: AlertMuteRef }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const b = request.body;
    if (b.ends_at === undefined && b.duration_s === undefined) throw new ApiError(400, ErrorCode.badRequest, 'a mute needs ends_at or duration_s');
    const mute: Omit<AlertMute, 'id' | 'created_at'> = {
      node_id: b.node === undefined ? null : app.nodeRegistry.resolve(b.node).id, demo: b.demo ?? null,
      device_id: b.device === undefined ? null : app.deviceRegistry.resolve(b.device).id, rule_id: b.rule_id ?? null,
      ...muteWindow(b), reason: b.reason ?? null, created_by: who(request),
    };
    reply.code(201);
    return { mute: await config.addMute(mute) };
  });

  app.delete('/alert-mutes/:id', {
    config: { role: 'operator', audit: 'alert.unmute' },
    schema: { tags: ['alerts'], summary: 'End a mute now', params: IdParams, response: { 200: Type.Object({ mute: AlertMuteRef }), ...errors(400, 401, 403, 404) } },
  }, async (request) => ({ mute: await config.deleteMute(request.params.id) }));
};
