import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ErrorCode, type DeviceKeepalive } from '@dvic/protocol';
import { ApiError } from '../../../errors.js';
import { errors } from '../../../schemas/common.js';
import { DeviceKeepaliveRef } from '../../../schemas/protocol-schemas.js';
import { keepalivePing, MAX_PING_BODY } from '../../../services/device-pings.js';
import { sha256Hex } from '../../../services/tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The keepalive body as it came (kept as the ping's last body). */
    keepaliveText: string | null;
  }
}

const DESCRIPTION = 'Public: the device token is the credential. Optional JSON body (any content type): a status of fail, down or error marks the device down, anything else up. 204 on success; 400 for a bad body, 404 for an unknown token, 413 over 10 kB.';

/**
 * A device's keepalive: POST /api/v1/devices/{token}/keepalive, or /api/v1/devices/keepalive with
 * `Authorization: Bearer <token>`. The 204 path only hashes the token and queues the ping (a token
 * not in memory is looked up in the database: another replica may have just given it).
 */
export const deviceKeepaliveRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.removeAllContentTypeParsers();
  app.decorateRequest('keepaliveText', null);
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_PING_BODY }, (request, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, {});
    try {
      request.keepaliveText = text;
      done(null, JSON.parse(text));
    } catch (err) {
      done(new ApiError(400, ErrorCode.invalidJson, `the body must be JSON (or empty): ${(err as Error).message.slice(0, 200)}`));
    }
  });
  app.addHook('preValidation', async (request) => { if (request.body === undefined) request.body = {}; });

  const registry = app.deviceRegistry;
  const keepalive = async (token: string, request: FastifyRequest) => {
    if (!(await registry.accept(sha256Hex(token), keepalivePing(request.body as DeviceKeepalive, request.keepaliveText)))) {
      throw new ApiError(404, ErrorCode.notFound, 'no device has this token');
    }
  };
  const config = { public: true, secretInRequest: true };
  const response = { 204: Type.Null(), ...errors(400, 404, 413) };

  app.post('/devices/:token/keepalive', {
    config, schema: { tags: ['devices'], security: [], summary: 'A device says it is alive', description: DESCRIPTION, params: Type.Object({ token: Type.String({ minLength: 1, maxLength: 128 }) }), body: DeviceKeepaliveRef, response },
  }, async (request, reply) => {
    await keepalive(request.params.token, request);
    return reply.code(204).send(null);
  });

  app.post('/devices/keepalive', {
    config, schema: { tags: ['devices'], security: [], summary: 'A device says it is alive (token in Authorization: Bearer)', description: DESCRIPTION, body: DeviceKeepaliveRef, response: { ...response, ...errors(401) } },
  }, async (request, reply) => {
    const header = request.headers.authorization;
    if (!header?.startsWith('Bearer ')) throw new ApiError(401, ErrorCode.unauthorized, 'send the device token as Authorization: Bearer <token>, or in the URL: /api/v1/devices/<token>/keepalive');
    await keepalive(header.slice(7).trim(), request);
    return reply.code(204).send(null);
  });
};
