import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../errors.js';
import type { AuditEntry } from '../repositories/audit-repository.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Audit action name of a sensitive route: denied attempts on it are recorded too. */
    audit?: string;
  }
  interface FastifyRequest {
    /** Appends to the audit log as the requesting user, from the client address. */
    audit(action: string, target: string | null, outcome: AuditEntry['outcome'], details?: Record<string, unknown>): void;
  }
}

export function auditRequest(this: FastifyRequest, action: string, target: string | null, outcome: AuditEntry['outcome'], details?: Record<string, unknown>): void {
  this.server.services.audit.append({
    user_id: this.user?.id ?? null, username: this.user?.username ?? null, source_ip: this.ip,
    action, target, outcome, details: details ?? null,
  });
}

/** A denied attempt at an audited route, before any handler ran (no or bad credentials, wrong role). */
export function auditDenied(request: FastifyRequest, reason: string): void {
  const action = request.routeOptions.config?.audit;
  if (!action) return;
  const target = (request.params as { id?: string } | undefined)?.id ?? null;
  request.audit(action, target, 'denied', { reason, method: request.method, url: request.url });
}

/** preHandler for routes that change the lab: only admins pass; refusals are audited. */
export async function requireAdmin(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  if (request.user?.role === 'admin') return;
  auditDenied(request, `role ${request.user?.role ?? 'none'} is not admin`);
  throw new ApiError(403, ErrorCode.forbidden, 'only administrators may do this');
}
