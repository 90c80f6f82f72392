import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../errors.js';
import { ApiTokensRepository } from '../repositories/api-tokens-repository.js';
import { SessionsRepository } from '../repositories/sessions-repository.js';
import { UsersRepository, type User } from '../repositories/users-repository.js';
import { LoginThrottle } from '../services/login-throttle.js';
import { sha256Hex } from '../services/tokens.js';

export const SESSION_COOKIE = 'dvic_session';

/** What a request was authenticated with: revoking it ends every socket it opened. */
export type Credential = { kind: 'session'; hash: string } | { kind: 'token'; hash: string };

declare module 'fastify' {
  interface FastifyInstance {
    users: UsersRepository;
    sessions: SessionsRepository;
    apiTokens: ApiTokensRepository;
    loginThrottle: LoginThrottle;
    /** onRequest hook of every protected route: a session cookie (browsers) or a Bearer API token. */
    authenticate: (request: FastifyRequest) => Promise<void>;
  }
  interface FastifyRequest {
    user: User | null;
    credential: Credential | null;
  }
}

/** Users, browser sessions and API tokens (only hashes are stored), and the login throttle. */
export const authPlugin = fp(async (app) => {
  const { db, config } = app;
  const users = new UsersRepository(db);
  const sessions = new SessionsRepository(db);
  const apiTokens = new ApiTokensRepository(db);
  sessions.deleteExpired();
  app.decorate('users', users);
  app.decorate('sessions', sessions);
  app.decorate('apiTokens', apiTokens);
  app.decorate('loginThrottle', new LoginThrottle(config.loginMaxFailures, config.loginWindowMs));
  app.decorateRequest('user', null);
  app.decorateRequest('credential', null);

  app.decorate('authenticate', async (request: FastifyRequest) => {
    const header = request.headers.authorization;
    if (header?.startsWith('Bearer ')) {
      const hash = sha256Hex(header.slice(7).trim());
      request.user = apiTokens.authenticate(hash) ?? null;
      if (!request.user) return refuse(request, 'invalid or revoked API token');
      request.credential = { kind: 'token', hash };
      return;
    }
    const cookie = request.cookies[SESSION_COOKIE];
    const hash = cookie ? sha256Hex(cookie) : null;
    request.user = hash ? sessions.findUser(hash) ?? null : null;
    if (!request.user) return refuse(request, cookie ? 'session expired: sign in again' : 'sign in first');
    request.credential = { kind: 'session', hash: hash! };
  });

  /** Refusals without usable credentials are counted per address, not written one by one. */
  function refuse(request: FastifyRequest, reason: string): never {
    app.auditTrail.unauthenticated(request.ip, reason, request.method, request.url);
    throw new ApiError(401, ErrorCode.unauthorized, reason);
  }
}, { name: 'auth', dependencies: ['db', 'audit'] });
