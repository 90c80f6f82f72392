import helmet from '@fastify/helmet';
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../errors.js';
import { requestEntry } from './route-guards.js';

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The dashboard's Content-Security-Policy: scripts only from the server's own files (Vite emits no
 * inline script), no framing. Styles also allow inline: xterm.js writes its theme and cell sizes in
 * <style> elements and style attributes at run time (CSS cannot run code).
 */
const CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

/**
 * The policy as a header, built once: helmet would rebuild it on every request (its directives may
 * be functions), which was a measurable share of a keepalive's cost.
 */
const CSP_HEADER = Object.entries(CSP_DIRECTIVES)
  .map(([name, sources]) => `${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${sources.join(' ')}`)
  .join(';');

/** The origin (scheme://host[:port]) of a URL, or null when it is not one. */
function originOf(value: string): string | null {
  try {
    const url = new URL(value);
    return /^https?:$/.test(url.protocol) ? url.origin : null;
  } catch {
    return null;
  }
}

/**
 * Web defences on every request (docs/security.md):
 * - security headers on every answer, errors included (helmet);
 * - a browser Origin on a WebSocket upgrade or a state-changing request must be the server's own
 *   (as the request reached it, forwarded headers believed only per DVIC_TRUST_PROXY),
 *   DVIC_PUBLIC_URL's, or one of DVIC_ALLOWED_ORIGINS; routes a browser never calls (the agent
 *   endpoint, `config.browser: false`) refuse any Origin. No Origin (CLI, agents, curl) is fine:
 *   a browser always sends one on these requests;
 * - state-changing requests must be JSON, which a cross-site form cannot send.
 * Refusals are 403 origin_refused / 415 unsupported_media_type, before any upgrade or handler, and
 * audited (with the user when the request carried valid credentials).
 */
export const webSecurityPlugin = fp(async (app) => {
  const { config } = app;
  const allowed = new Set([...config.allowedOrigins, ...(config.publicUrl ? [originOf(config.publicUrl)] : [])].filter((o): o is string => o !== null));

  await app.register(helmet, {
    contentSecurityPolicy: false,
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'same-origin' },
    // Sent below only over https: on plain http it would be meaningless.
    strictTransportSecurity: false,
    crossOriginEmbedderPolicy: false,
  });

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    void reply.header('content-security-policy', CSP_HEADER);
    if (request.protocol === 'https') void reply.header('strict-transport-security', 'max-age=15552000');
    // Device pings carry their own secret and come from firmware, cron and curl with any body type.
    if (request.routeOptions.config.secretInRequest) return;
    const upgrade = request.headers.upgrade?.toLowerCase() === 'websocket';
    const changing = STATE_CHANGING.has(request.method);
    if (!upgrade && !changing) return;
    const origin = request.headers.origin;
    if (origin !== undefined && !originAllowed(request, origin)) {
      await refuse(request, new ApiError(403, ErrorCode.originRefused, `requests from ${origin.slice(0, 200)} are refused: only pages of this server may do this`), { origin });
    }
    if (changing) await checkBodyType(request);
  });

  /** A raw upload route takes only application/octet-stream; every other one only JSON. */
  async function checkBodyType(request: FastifyRequest): Promise<void> {
    const type = request.headers['content-type'];
    const raw = request.routeOptions.config.octetStream === true;
    // JSON passes here on a raw route too, so that credentials are checked first (401 before 415);
    // the route itself then refuses a body that is not a byte stream.
    if (isJson(type) || (raw && isOctetStream(type))) return;
    const advice = raw ? 'send the raw bytes with content-type: application/octet-stream'
      : 'send the body as JSON (content-type: application/json), {} when there is nothing to send';
    await refuse(request, new ApiError(415, ErrorCode.unsupportedMediaType, advice), { content_type: type ?? null });
  }

  function originAllowed(request: FastifyRequest, origin: string): boolean {
    if (request.routeOptions.config.browser === false) return false;
    const normalized = originOf(origin);
    if (normalized === null) return false;
    return normalized === originOf(`${request.protocol}://${request.host}`) || allowed.has(normalized);
  }

  /** Audits the refusal (a row with the user when credentials were valid, else counted per address) and throws it. */
  async function refuse(request: FastifyRequest, error: ApiError, details: Record<string, unknown>): Promise<never> {
    const user = await app.identify(request);
    const action = error.code === ErrorCode.originRefused ? 'origin.refused' : 'request.refused';
    if (user) {
      request.user = user;
      void app.auditTrail.appendBestEffort(requestEntry(request, action, 'denied', { ...details, method: request.method, url: request.url.slice(0, 512) }));
      request.user = null;
    } else {
      app.auditTrail.unauthenticated(request.ip, action, request.method, request.url);
    }
    throw error;
  }
}, { name: 'web-security', dependencies: ['auth', 'audit'] });

function isJson(contentType: string | undefined): boolean {
  return contentType?.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

function isOctetStream(contentType: string | undefined): boolean {
  return contentType?.split(';')[0]!.trim().toLowerCase() === 'application/octet-stream';
}
