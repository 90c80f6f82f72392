import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { ApiError, notFound } from '../../../errors.js';
import { errors } from '../../../schemas/common.js';
import { Labels, NodeName } from '../../../schemas/node.js';
import { EnrollmentRef } from '../../../schemas/protocol-schemas.js';
import { serverIdentity } from './enrollment-tokens.js';

const EnrollmentParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

const EnrollmentBody = Type.Object({
  name: NodeName,
  host: Type.String({ minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9._:-]+$', description: 'IP address or host name of the target, as the source node reaches it' }),
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: 22 })),
  username: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$' }),
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'Held in memory for this enrollment only: never stored, logged or shown' })),
  private_key: Type.Optional(Type.String({ minLength: 1, maxLength: 16384, description: 'An OpenSSH or PEM private key, instead of a password (then the user must be root or have passwordless sudo)' })),
  via: Type.String({ minLength: 1, maxLength: 64, description: 'The source node (id, name or id prefix) that reaches the target, or "server" to connect directly' }),
  labels: Type.Optional(Labels),
  accept_host_key: Type.Optional(Type.String({ pattern: '^SHA256:[A-Za-z0-9+/]{43}$', description: "The target's expected host key (OpenSSH SHA256: form); without it the enrollment waits in awaiting_host_key" })),
}, { additionalProperties: false });

export const enrollmentsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { enrollments, nodeRegistry: registry } = app;

  app.post('/enrollments', {
    config: { role: 'admin', audit: 'enrollment.create' },
    schema: {
      tags: ['enrollments'], summary: 'Add a machine over SSH: answers at once with the enrollment, whose steps then run',
      description: 'Progress: GET /api/v1/enrollments/{id} and enrollment.updated on /api/v1/live. Give password or private_key (one of them). '
        + 'Without accept_host_key the enrollment stops in state awaiting_host_key with host_key_fingerprint set: POST .../accept continues it.',
      body: EnrollmentBody, response: { 202: Type.Object({ enrollment: EnrollmentRef }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const { body } = request;
    if (!body.password === !body.private_key) throw new ApiError(400, ErrorCode.badRequest, 'give either password or private_key');
    const via = body.via === 'server' ? 'server' : registry.resolve(body.via).id;
    if (await enrollments.nameTaken(body.name, body.host, body.port ?? 22)) throw new ApiError(409, ErrorCode.conflict, `a node named "${body.name}" already exists`);
    const enrollment = await enrollments.start({
      name: body.name, host: body.host, port: body.port ?? 22, username: body.username, password: body.password, privateKey: body.private_key,
      via, labels: body.labels ?? {}, acceptHostKey: body.accept_host_key,
    }, serverIdentity(app, request));
    reply.code(202);
    return { enrollment };
  });

  app.get('/enrollments/:id', {
    config: { role: 'admin' },
    schema: { tags: ['enrollments'], summary: 'An enrollment: its state, steps with durations, and error', params: EnrollmentParams, response: { 200: Type.Object({ enrollment: EnrollmentRef }), ...errors(401, 403, 404) } },
  }, async (request) => {
    const enrollment = await enrollments.get(request.params.id);
    if (!enrollment) throw notFound('enrollment');
    return { enrollment };
  });

  app.post('/enrollments/:id/retry', {
    config: { role: 'admin', audit: 'enrollment.retry' },
    schema: {
      tags: ['enrollments'], summary: 'Run a failed enrollment again, with its password (or private key) given again: a fresh key, the same node',
      params: EnrollmentParams,
      body: Type.Object({ password: EnrollmentBody.properties.password, private_key: EnrollmentBody.properties.private_key }, { additionalProperties: false }),
      response: { 200: Type.Object({ enrollment: EnrollmentRef }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request) => {
    const { body } = request;
    if (!(await enrollments.get(request.params.id))) throw notFound('enrollment');
    if (!body.password === !body.private_key) throw new ApiError(400, ErrorCode.badRequest, 'give either password or private_key');
    const result = await enrollments.retry(request.params.id, { password: body.password, privateKey: body.private_key }, serverIdentity(app, request));
    if (result === 'not_failed') throw new ApiError(409, ErrorCode.conflict, 'only a failed enrollment can be retried');
    return { enrollment: result };
  });

  app.post('/enrollments/:id/accept', {
    config: { role: 'admin', audit: 'enrollment.accept-host-key' },
    schema: {
      tags: ['enrollments'], summary: "Confirm the target's host key (state awaiting_host_key) and continue",
      params: EnrollmentParams, response: { 200: Type.Object({ enrollment: EnrollmentRef }), ...errors(401, 403, 404, 409) },
    },
  }, async (request) => {
    if (!(await enrollments.get(request.params.id))) throw notFound('enrollment');
    const result = await enrollments.accept(request.params.id);
    if (result === 'not_waiting') throw new ApiError(409, ErrorCode.conflict, 'this enrollment is not waiting for its host key to be confirmed');
    if (result === 'expired') throw new ApiError(409, ErrorCode.conflict, 'this enrollment waited too long and forgot its password: start it again');
    return { enrollment: result };
  });
};
