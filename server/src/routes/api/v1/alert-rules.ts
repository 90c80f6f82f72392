import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { errors } from '../../../schemas/common.js';
import { AlertRuleRef, AlertRuleScopeRef } from '../../../schemas/protocol-schemas.js';
import { RULE_KINDS, type RuleKind } from '../../../alerts/rule-kinds.js';

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const KINDS = Object.keys(RULE_KINDS) as RuleKind[];
const Fields = {
  name: Type.String({ minLength: 1, maxLength: 128 }),
  threshold: Type.Union([Type.Number({ minimum: -1000, maximum: 1_000_000 }), Type.Null()], { description: 'Required by disk_used, memory_available, temperature, log_errors, demo_silent' }),
  for_s: Type.Integer({ minimum: 0, maximum: 604_800 }),
  scope: AlertRuleScopeRef,
  severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')]),
  enabled: Type.Boolean(),
  repeat_s: Type.Union([Type.Integer({ minimum: 1, maximum: 604_800 }), Type.Null()], { description: 'Default 14400 (4 h); null: never' }),
  channels: Type.Union([Type.Array(Type.String({ format: 'uuid' }), { maxItems: 64 }), Type.Null()], { description: 'null: every channel' }),
};
const optional = Object.fromEntries(Object.entries(Fields).map(([k, v]) => [k, Type.Optional(v)])) as { [K in keyof typeof Fields]: ReturnType<typeof Type.Optional<(typeof Fields)[K]>> };

export const alertRulesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app.alerts;

  app.get('/alert-rules', {
    schema: { tags: ['alerts'], summary: 'Every alert rule (the defaults of a fresh install included)', response: { 200: Type.Object({ rules: Type.Array(AlertRuleRef) }), ...errors(401) } },
  }, async () => ({ rules: config.listRules() }));

  app.get('/alert-rules/:id', {
    schema: { tags: ['alerts'], summary: 'One alert rule', params: IdParams, response: { 200: Type.Object({ rule: AlertRuleRef }), ...errors(400, 401, 404) } },
  }, async (request) => ({ rule: config.rule(request.params.id) }));

  app.post('/alert-rules', {
    config: { role: 'operator', audit: 'alert-rule.create' },
    schema: {
      tags: ['alerts'], summary: 'Add an alert rule',
      body: Type.Object({ ...optional, name: Fields.name, kind: Type.Union(KINDS.map((k) => Type.Literal(k))) }, { additionalProperties: false }),
      response: { 201: Type.Object({ rule: AlertRuleRef }), ...errors(400, 401, 403) },
    },
  }, async (request, reply) => {
    reply.code(201);
    return { rule: await config.createRule(request.body) };
  });

  app.patch('/alert-rules/:id', {
    config: { role: 'operator', audit: 'alert-rule.update' },
    schema: {
      tags: ['alerts'], summary: 'Change an alert rule (its kind stays)', params: IdParams,
      body: Type.Object(optional, { additionalProperties: false }),
      response: { 200: Type.Object({ rule: AlertRuleRef }), ...errors(400, 401, 403, 404) },
    },
  }, async (request) => ({ rule: await config.updateRule(request.params.id, request.body) }));

  app.delete('/alert-rules/:id', {
    config: { role: 'operator', audit: 'alert-rule.delete' },
    schema: { tags: ['alerts'], summary: 'Delete an alert rule (its firing alerts resolve)', params: IdParams, response: { 200: Type.Object({ rule: AlertRuleRef }), ...errors(400, 401, 403, 404) } },
  }, async (request) => ({ rule: await config.deleteRule(request.params.id) }));
};
