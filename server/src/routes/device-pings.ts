import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import type { Ping } from '../live/device-registry.js';
import { healthchecksPing, kumaPush, MAX_PING_REQUEST_BYTES } from '../services/device-pings.js';
import { sha256Hex } from '../services/tokens.js';

const Token = Type.String({ minLength: 1, maxLength: 128 });

/** Any body, of any type, as text (the ping's log; 413 over MAX_PING_REQUEST_BYTES); GET and HEAD have none. */
const anyText: FastifyPluginAsyncTypebox = async (app) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_PING_REQUEST_BYTES }, (_request, body, done) => done(null, body));
  app.addHook('preValidation', async (request) => { if (request.body === undefined) request.body = ''; });
};

/**
 * The compatible ping URLs, byte for byte, so existing scripts and firmware work unchanged
 * (docs/devices.md). Public: the token in the URL is the only credential (config.secretInRequest:
 * no cookie is involved, so any body type and Origin are fine).
 */
export const devicePingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  await anyText(app, {});
  const registry = app.deviceRegistry;
  const config = { public: true, secretInRequest: true };
  const accept = (token: string, ping: Ping) => registry.accept(sha256Hex(token), ping);

  // Healthchecks: 200 "OK" as text, 404 "not found" for an unknown token.
  const healthchecks = async (request: FastifyRequest<{ Params: { token: string; action?: string } }>, reply: FastifyReply) => {
    const ping = healthchecksPing(request.params.action, request.body as string);
    if (!(await accept(request.params.token, ping))) return reply.code(404).type('text/plain').send('not found');
    return reply.type('text/plain').send('OK');
  };
  // GET (and HEAD) have no body; POST takes any.
  const hcParams = Type.Object({ token: Token, action: Type.Optional(Type.String({ maxLength: 64 })) });
  for (const url of ['/ping/:token', '/ping/:token/:action']) {
    app.get(url, { config, schema: { hide: true, params: hcParams } }, healthchecks);
    app.post(url, { config, schema: { hide: true, params: hcParams, body: Type.String() } }, healthchecks);
  }

  // Uptime Kuma: {"ok": true}, or {"ok": false, "msg"} (with our error too) for an unknown token.
  const kumaQuery = Type.Object({ status: Type.Optional(Type.String({ maxLength: 64 })), msg: Type.Optional(Type.String({ maxLength: 4096 })), ping: Type.Optional(Type.String({ maxLength: 32 })) });
  const kuma = async (request: FastifyRequest<{ Params: { token: string }; Querystring: { status?: string; msg?: string; ping?: string } }>, reply: FastifyReply) => {
    if (!(await accept(request.params.token, kumaPush(request.query)))) {
      const message = 'Monitor not found or not active.';
      return reply.code(404).send({ ok: false, msg: message, error: { code: ErrorCode.notFound, message } });
    }
    return reply.send({ ok: true });
  };
  const kumaParams = Type.Object({ token: Token });
  app.get('/api/push/:token', { config, schema: { hide: true, params: kumaParams, querystring: kumaQuery } }, kuma);
  app.post('/api/push/:token', { config, schema: { hide: true, params: kumaParams, querystring: kumaQuery, body: Type.String() } }, kuma);
};
