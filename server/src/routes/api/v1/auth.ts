import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../../../errors.js';
import { SESSION_COOKIE } from '../../../plugins/auth.js';
import type { User } from '../../../repositories/users-repository.js';
import { UNUSABLE_PASSWORD_HASH, verifyPassword } from '../../../services/passwords.js';
import { newSecret, sha256Hex } from '../../../services/tokens.js';
import { errors } from '../../../schemas/common.js';
import { UserRef } from '../../../schemas/protocol-schemas.js';

const view = (user: User) => ({ id: user.id, username: user.username, role: user.role, disabled: false, created_at: user.createdAt, last_login_at: null });

export const loginRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/auth/login', {
    config: { public: true, audit: { action: 'login', transactional: false } },
    schema: {
      tags: ['auth'], security: [],
      summary: 'Sign in: sets an HttpOnly session cookie',
      description: 'Failed attempts are limited per client address (429 with Retry-After once exceeded).',
      body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 128 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ user: UserRef }), ...errors(400, 401, 429) },
    },
  }, async (request, reply) => {
    const { users, sessions, loginThrottle, config } = app;
    const retryMs = loginThrottle.retryAfterMs(request.ip);
    if (retryMs > 0) {
      const seconds = Math.ceil(retryMs / 1000);
      throw new ApiError(429, ErrorCode.tooManyAttempts, `too many failed sign-ins: try again in ${seconds} s`, { 'retry-after': String(seconds) });
    }
    const user = users.findWithHash(request.body.username);
    // Compare against a dummy hash for unknown users so response time does not reveal usernames.
    const ok = await verifyPassword(request.body.password, user?.passwordHash ?? UNUSABLE_PASSWORD_HASH);
    if (!user || !ok) {
      loginThrottle.recordFailure(request.ip);
      request.log.warn({ username: request.body.username, ip: request.ip }, 'failed sign-in');
      throw new ApiError(401, ErrorCode.invalidCredentials, 'wrong username or password');
    }
    loginThrottle.recordSuccess(request.ip);
    request.user = user;
    const secret = newSecret();
    sessions.create(sha256Hex(secret), user.id, config.sessionTtlMs);
    void reply.setCookie(SESSION_COOKIE, secret, {
      path: '/', httpOnly: true, sameSite: 'strict', secure: request.protocol === 'https', maxAge: Math.floor(config.sessionTtlMs / 1000),
    });
    return { user: view(user) };
  });
};

export const sessionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/auth/me', {
    schema: { tags: ['auth'], summary: 'The signed-in user', response: { 200: Type.Object({ user: UserRef }), ...errors(401) } },
  }, async (request) => ({ user: view(request.user!) }));

  app.post('/auth/logout', {
    config: { audit: 'logout' },
    schema: { tags: ['auth'], summary: 'Sign out: ends this session', response: { 204: Type.Null(), ...errors(401) } },
  }, (request, reply) => {
    const cookie = request.cookies[SESSION_COOKIE];
    if (cookie) app.sessions.delete(sha256Hex(cookie));
    void reply.clearCookie(SESSION_COOKIE, { path: '/' });
    reply.code(204);
    return null;
  });
};
