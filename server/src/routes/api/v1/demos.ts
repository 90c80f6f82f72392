import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { errors } from '../../../schemas/common.js';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../../../errors.js';
import { CommandRef, DemoExpectationRef, LabDemoRef, ScheduleRef } from '../../../schemas/protocol-schemas.js';
import { requester } from './requester.js';

const DemoParams = Type.Object({ id: Type.String({ format: 'uuid', description: 'Demo id' }) });
const STATES = ['running', 'stopped', 'crashed', 'restarting'] as const;
const ACTIONS = ['start', 'stop', 'restart'] as const;
const ActionCommand = Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 4096 }), Type.Null()]));

/** A label filter: `room` (has the label) or `room=hall`. */
function labelFilter(text: string | undefined): { key: string; value: string | undefined } | undefined {
  if (text === undefined) return undefined;
  const at = text.indexOf('=');
  return at < 0 ? { key: text, value: undefined } : { key: text.slice(0, at), value: text.slice(at + 1) };
}

export const demosRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { demoCatalog: catalog, nodeRegistry: nodes, commands } = app;

  app.get('/demos', {
    schema: {
      tags: ['demos'], summary: 'Every demo across the lab: (node, name) with its state, restarts and runs; problems first',
      description: 'A demo is down when it is expected, inside its schedule (lab time zone), on a node that is not revoked, and not running.',
      querystring: Type.Object({
        node: Type.Optional(Type.String({ maxLength: 64, description: 'Node id, name or id prefix' })),
        state: Type.Optional(Type.Union(STATES.map((s) => Type.Literal(s)))),
        down: Type.Optional(Type.Boolean()),
        expected: Type.Optional(Type.Boolean()),
        label: Type.Optional(Type.String({ maxLength: 256, description: 'Node label: `key` or `key=value`' })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ demos: Type.Array(LabDemoRef) }), ...errors(400, 401, 404, 409) },
    },
  }, async (request) => {
    const { node, state, down, expected, label } = request.query;
    return { demos: catalog.list({ nodeId: node === undefined ? undefined : nodes.resolve(node).id, state, down, expected, label: labelFilter(label) }) };
  });

  app.get('/demos/:id', {
    schema: { tags: ['demos'], summary: 'One demo with its runs (newest first)', params: DemoParams, response: { 200: Type.Object({ demo: LabDemoRef }), ...errors(400, 401, 404) } },
  }, async (request) => ({ demo: catalog.get(request.params.id) }));

  app.patch('/demos/:id', {
    config: { role: 'operator', audit: 'demo.update' },
    schema: {
      tags: ['demos'], summary: 'Mark a demo expected (or not), set its schedule (null: always) or its notes', params: DemoParams,
      body: Type.Object({
        expected: Type.Optional(Type.Boolean()),
        schedule: Type.Optional(Type.Union([ScheduleRef, Type.Null()])),
        notes: Type.Optional(Type.Union([Type.String({ maxLength: 2000 }), Type.Null()])),
        actions: Type.Optional(Type.Object({ start: ActionCommand, stop: ActionCommand, restart: ActionCommand }, {
          additionalProperties: false, description: 'Shell commands run on the demo\'s node by its start, stop and restart buttons; null clears one',
        })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ demo: LabDemoRef }), ...errors(400, 401, 403, 404) },
    },
  }, async (request) => ({ demo: await catalog.update(request.params.id, request.body) }));

  app.delete('/demos/:id', {
    config: { role: 'operator', audit: 'demo.forget' },
    schema: {
      tags: ['demos'], summary: 'Forget (dismiss) a demo that is not running; its logs stay, and it comes back if it runs again', params: DemoParams,
      response: { 200: Type.Object({ demo: LabDemoRef }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request) => {
    const demo = catalog.get(request.params.id);
    await catalog.forget(demo.id);
    return { demo };
  });

  app.post('/demos/:id/actions/:action', {
    config: { role: 'operator', audit: 'demo.action' },
    schema: {
      tags: ['demos'], summary: 'Run the demo\'s start, stop or restart command on its node (as a command: see GET /api/v1/commands/{id})',
      params: Type.Object({ id: DemoParams.properties.id, action: Type.Union(ACTIONS.map((a) => Type.Literal(a))) }),
      response: { 202: Type.Object({ command: CommandRef }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const { id, action } = request.params;
    const demo = catalog.get(id);
    const command = demo.actions[action];
    if (command === null) {
      throw new ApiError(409, ErrorCode.conflict, `no ${action} command is set for ${demo.name}: set one on the demo page or with PATCH /api/v1/demos/${id}`);
    }
    const started = await commands.runOn(demo.node_id, { command }, requester(request));
    reply.code(202);
    return { command: started };
  });

  app.get('/demo-expectations', {
    schema: {
      tags: ['demos'], summary: 'Label rules: every node with a label is expected to run a demo (e.g. room=hall runs kiosk)',
      response: { 200: Type.Object({ expectations: Type.Array(DemoExpectationRef) }), ...errors(401) },
    },
  }, async () => ({ expectations: catalog.listExpectations() }));

  app.post('/demo-expectations', {
    config: { role: 'operator', audit: 'demo.expect' },
    schema: {
      tags: ['demos'], summary: 'Expect a demo on every node with a label, optionally inside a schedule',
      body: Type.Object({
        label: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,63}=.{0,256}$', description: '`key=value`, e.g. `room=hall`' }),
        name: Type.String({ minLength: 1, maxLength: 128, description: 'Demo name' }),
        schedule: Type.Optional(Type.Union([ScheduleRef, Type.Null()])),
      }, { additionalProperties: false }),
      response: { 201: Type.Object({ expectation: DemoExpectationRef }), ...errors(400, 401, 403, 409) },
    },
  }, async (request, reply) => {
    const { label, name, schedule = null } = request.body;
    const at = label.indexOf('=');
    reply.code(201);
    return { expectation: await catalog.addExpectation({ label_key: label.slice(0, at), label_value: label.slice(at + 1), name, schedule }) };
  });

  app.delete('/demo-expectations/:id', {
    config: { role: 'operator', audit: 'demo.unexpect' },
    schema: {
      tags: ['demos'], summary: 'Remove a label rule', params: DemoParams,
      response: { 200: Type.Object({ expectation: DemoExpectationRef }), ...errors(400, 401, 403, 404) },
    },
  }, async (request) => ({ expectation: await catalog.deleteExpectation(request.params.id) }));
};
