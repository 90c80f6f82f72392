import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler, RouteHandlerMethod, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { ErrorCode } from '@dvic/protocol';
import { dropSyncCallbacks, settleSyncCallbacks } from '../db/transaction.js';
import { ApiError } from '../errors.js';
import { roleRank, type Role } from '../repositories/users-repository.js';
import type { NewAuditEntry } from '../repositories/audit-repository.js';
import { storeFailure } from '../services/store-failure.js';

/** What a route declares about who may call it and what the audit log keeps of it. */
export interface RouteGuard {
  /** A route anyone may call (sign-in, the agent endpoint): it sits outside the authenticated folder. */
  public?: boolean;
  /** The least role allowed (default viewer: any signed-in user). */
  role?: Role;
  /**
   * The audit action of a route that changes things. Its handler runs in one transaction with the
   * audit entry: a change that cannot be audited is not applied. Such a handler may await the
   * database, nothing else (agent round trips go in a preHandler, or after the commit). `{action, transactional: false}` audits
   * a route with no database change of its own (sign-in) after it ran.
   */
  audit?: string | { action: string; transactional: false };
  /** The token scope that may call this route besides unscoped credentials (GET /metrics: 'metrics'). */
  scope?: 'metrics';
  /** false: no browser ever calls this route (the agent endpoint), so any Origin header is refused. */
  browser?: boolean;
  /**
   * Authenticated only by a secret in the URL or the Authorization header (device keepalives),
   * never a cookie: a cross-site page cannot forge it, so any body type and Origin are accepted.
   */
  secretInRequest?: boolean;
  /**
   * Takes raw bytes (application/octet-stream, artifact uploads) instead of JSON. CSRF-safe too: a
   * cross-site form cannot send that type, and a page's fetch with it needs a preflight never granted.
   */
  octetStream?: boolean;
}

declare module 'fastify' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface FastifyContextConfig extends RouteGuard {}
  interface FastifyInstance {
    /** onRequest hook after authenticate: refuses (403, audited) a role below the route's. */
    authorize: (request: FastifyRequest) => Promise<void>;
  }
}

export const hasRole = (user: { role: Role } | null, role: Role) => user !== null && roleRank(user.role) >= roleRank(role);

const CHANGES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const EMPTY_BODY = { type: 'object', additionalProperties: false, description: 'No fields: send {}' };

const auditAction = (audit: RouteGuard['audit']) => (typeof audit === 'string' ? audit : audit?.action);

/** The audit entry of a request: the user, the address, the target and what was asked. */
export function requestEntry(request: FastifyRequest, action: string, outcome: NewAuditEntry['outcome'], details: Record<string, unknown>): NewAuditEntry {
  const params = request.params as { id?: unknown } | undefined;
  return {
    user_id: request.user?.id ?? null, username: request.user?.username ?? null, source_ip: request.ip, action,
    target: typeof params?.id === 'string' || typeof params?.id === 'number' ? String(params.id) : null, outcome, details,
  };
}

/** The ids of what a handler created or changed, for the audit entry. */
function resultIds(result: unknown): Record<string, unknown> {
  if (!result || typeof result !== 'object') return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(result)) {
    if ((key === 'id' || key.endsWith('_id')) && (typeof value === 'string' || typeof value === 'number')) out[key] = value;
    else if (value && typeof value === 'object' && 'id' in value) out[`${key}_id`] = (value as { id: unknown }).id;
  }
  return out;
}

const outcomeOf = (err: unknown): NewAuditEntry['outcome'] => (err instanceof ApiError && (err.statusCode === 401 || err.statusCode === 403) ? 'denied' : 'failed');

/** Route roles and audited changes, declared in route config and applied here for every route. */
export const routeGuardsPlugin = fp(async (app) => {
  app.decorate('authorize', async (request: FastifyRequest) => {
    const { role = 'viewer', audit, scope } = request.routeOptions.config;
    const scoped = request.credential?.scope;
    const outOfScope = scoped && scoped !== scope;
    if (!outOfScope && hasRole(request.user, role)) return;
    const reason = outOfScope ? `this API token is limited to scope ${scoped} (GET /metrics)` : `role ${request.user?.role ?? 'none'} may not do this (needs ${role})`;
    const action = auditAction(audit) ?? `${request.method} ${request.routeOptions.url}`;
    app.auditTrail.appendBestEffort(requestEntry(request, action, 'denied', { reason, method: request.method, url: request.url }));
    throw new ApiError(403, ErrorCode.forbidden, `${reason}`);
  });

  app.addHook('onRoute', (route: RouteOptions) => {
    const audit = route.config?.audit;
    // A change that takes no body takes exactly {}: anything else is refused, not audited as given.
    if (route.schema && !route.schema.body && !route.config?.octetStream && [route.method].flat().some((m) => CHANGES.has(m))) route.schema.body = EMPTY_BODY;
    // Documented in the OpenAPI document, where a test checks every route's guard.
    if (route.schema && !route.schema.hide) Object.assign(route.schema, { 'x-role': route.config?.public ? 'public' : route.config?.role ?? 'viewer', ...(audit ? { 'x-audit': auditAction(audit) } : {}), ...(route.config?.secretInRequest ? { 'x-credential': 'device-token' } : {}) });
    if (!audit || (route as { websocket?: boolean }).websocket) return;
    route.handler = typeof audit === 'string' ? transactional(route.handler, audit) : auditedAfter(route.handler, audit.action);
    if (route.preHandler) route.preHandler = (Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler]).map((h) => auditedPreHandler(h as preHandlerAsyncHookHandler, auditAction(audit)!));
  });

  /** A refusal in a preHandler (a wrong current password, say) is audited like one in the handler. */
  function auditedPreHandler(hook: preHandlerAsyncHookHandler, action: string): preHandlerAsyncHookHandler {
    return async function (this: unknown, request: FastifyRequest, reply: FastifyReply) {
      try {
        await hook.call(this as never, request, reply);
      } catch (err) {
        app.auditTrail.appendBestEffort(requestEntry(request, action, outcomeOf(err), { body: request.body ?? null, error: (err as Error).message }));
        throw err;
      }
    } as preHandlerAsyncHookHandler;
  }

  /** The audit entry of a change, in its transaction: if it cannot be written, the change is not made. */
  function appendOrRollBack(entry: NewAuditEntry): void {
    try {
      app.auditTrail.append(entry);
    } catch (err) {
      const failure = storeFailure(err);
      throw new ApiError(503, failure.code, `not applied: this change could not be written to the audit log (${failure.message}); try again later`,
        { 'retry-after': String(Math.ceil(failure.retryAfterMs / 1000)) });
    }
  }

  function transactional(handler: RouteHandlerMethod, action: string): RouteHandlerMethod {
    return async function (this: unknown, request: FastifyRequest, reply: FastifyReply) {
      const details = { body: request.body ?? null };
      try {
        return await app.sql.transaction(async () => {
          const result: unknown = await handler.call(this as never, request, reply);
          if (reply.sent) throw new Error(`the audited route ${action} must return its answer, not send it`);
          appendOrRollBack(requestEntry(request, action, 'ok', { ...details, ...resultIds(result) }));
          settleSyncCallbacks(app.db, (fn) => app.sql.afterCommit(fn));
          return result;
        });
      } catch (err) {
        dropSyncCallbacks(app.db);
        app.auditTrail.appendBestEffort(requestEntry(request, action, outcomeOf(err), { ...details, error: (err as Error).message }));
        throw err;
      }
    } as RouteHandlerMethod;
  }

  function auditedAfter(handler: RouteHandlerMethod, action: string): RouteHandlerMethod {
    return async function (this: unknown, request: FastifyRequest, reply: FastifyReply) {
      const details = { body: request.body ?? null };
      try {
        const result: unknown = await handler.call(this as never, request, reply);
        app.auditTrail.appendBestEffort(requestEntry(request, action, 'ok', details));
        return result;
      } catch (err) {
        app.auditTrail.appendBestEffort(requestEntry(request, action, outcomeOf(err), { ...details, error: (err as Error).message }));
        throw err;
      }
    } as RouteHandlerMethod;
  }
}, { name: 'route-guards', dependencies: ['auth', 'audit', 'db'] });
