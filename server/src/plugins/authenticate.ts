import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../errors.js';
import type { User } from '../repositories/users-repository.js';
import { sha256Hex } from '../services/tokens.js';
import { auditDenied } from './audit-trail.js';

export const SESSION_COOKIE = 'dvic_session';

declare module 'fastify' {
  interface FastifyRequest {
    user: User | null;
  }
}

/**
 * onRequest hook for every protected route: a session cookie (browsers) or an
 * "Authorization: Bearer <api token>" header (CLI, scripts). Registered once per route folder.
 */
export async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const { sessions, apiTokens } = request.server.services;
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) {
    request.user = apiTokens.authenticate(sha256Hex(header.slice(7).trim())) ?? null;
    if (!request.user) {
      auditDenied(request, 'invalid or revoked API token');
      throw new ApiError(401, ErrorCode.unauthorized, 'invalid or revoked API token');
    }
    return;
  }
  const cookie = request.cookies[SESSION_COOKIE];
  request.user = cookie ? sessions.findUser(sha256Hex(cookie)) ?? null : null;
  if (!request.user) {
    auditDenied(request, cookie ? 'expired session' : 'not signed in');
    throw new ApiError(401, ErrorCode.unauthorized, cookie ? 'session expired: sign in again' : 'sign in first');
  }
}
