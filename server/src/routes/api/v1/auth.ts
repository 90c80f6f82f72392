import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../../../errors.js';
import { KIOSK_COOKIE, SESSION_COOKIE } from '../../../plugins/auth.js';
import { userView } from '../../../repositories/users-repository.js';
import { loginKeys, type LoginThrottle } from '../../../services/login-throttle.js';
import { UNUSABLE_PASSWORD_HASH, verifyPassword } from '../../../services/passwords.js';
import { newSecret, sha256Hex } from '../../../services/tokens.js';
import { errors } from '../../../schemas/common.js';
import { UserRef } from '../../../schemas/protocol-schemas.js';
import { hashBodyPassword, hashedPassword, NewPassword } from './password-body.js';

/** Starts a password check counted against the address and the user name, or refuses it (429, until when). */
function startAttempt(throttle: LoginThrottle, request: FastifyRequest, username: string): () => void {
  const attempt = throttle.attempt(loginKeys(request.ip, username));
  if (attempt.allowed) return attempt.succeeded;
  const seconds = Math.max(1, Math.ceil((attempt.retryAt - Date.now()) / 1000));
  const at = new Date(attempt.retryAt).toISOString().slice(11, 19);
  throw new ApiError(429, ErrorCode.tooManyAttempts, `too many failed sign-ins: try again at ${at} UTC (in ${seconds} s)`,
    { 'retry-after': String(seconds) }, { retry_at: attempt.retryAt });
}

export const loginRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/auth/login', {
    config: { public: true, audit: { action: 'login', transactional: false } },
    schema: {
      tags: ['auth'], security: [],
      summary: 'Sign in: sets an HttpOnly session cookie',
      description: 'Attempts are counted per client address and per user name before the password is checked: past DVIC_LOGIN_MAX_FAILURES in DVIC_LOGIN_WINDOW_S, 429 with Retry-After and error.retry_at (epoch ms), even for the right password.',
      body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 128 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ user: UserRef }), ...errors(400, 401, 429) },
    },
  }, async (request, reply) => {
    const { users, sessions, loginThrottle, config } = app;
    const succeeded = startAttempt(loginThrottle, request, request.body.username);
    const user = await users.findWithHash(request.body.username);
    // Compare against a dummy hash for unknown users so response time does not reveal usernames.
    const ok = await verifyPassword(request.body.password, user?.passwordHash ?? UNUSABLE_PASSWORD_HASH);
    if (!user || !ok) {
      request.log.warn({ username: request.body.username, ip: request.ip }, 'failed sign-in');
      throw new ApiError(401, ErrorCode.invalidCredentials, 'wrong username or password');
    }
    succeeded();
    const secret = newSecret();
    await sessions.create(sha256Hex(secret), user.id, config.sessionTtlMs);
    await users.recordLogin(user.id);
    request.user = (await users.findById(user.id))!;
    void reply.setCookie(SESSION_COOKIE, secret, {
      path: '/', httpOnly: true, sameSite: 'strict', secure: request.protocol === 'https', maxAge: Math.floor(config.sessionTtlMs / 1000),
    });
    return { user: userView(request.user) };
  });
};

/**
 * A TV on the wall opens /wall?token=<viewer API token>: the dashboard trades the token for an
 * HttpOnly cookie here, so the TV needs no admin session and the token leaves the address bar.
 */
export const kioskRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/auth/kiosk', {
    config: { public: true, audit: { action: 'kiosk', transactional: false } },
    schema: {
      tags: ['auth'], security: [],
      summary: 'Wall mode for a TV: a read-only (viewer) API token becomes an HttpOnly cookie',
      description: 'Only a token whose role is viewer is accepted (403 otherwise): the wall cannot change anything. Attempts count against the sign-in throttle.',
      body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ user: UserRef }), ...errors(400, 401, 403, 429) },
    },
  }, async (request, reply) => {
    const succeeded = startAttempt(app.loginThrottle, request, 'kiosk token');
    const found = await app.apiTokens.authenticate(sha256Hex(request.body.token), Date.now(), true);
    if (!found) throw new ApiError(401, ErrorCode.invalidCredentials, 'invalid, expired or revoked API token');
    if (found.user.role !== 'viewer') {
      throw new ApiError(403, ErrorCode.forbidden, 'a wall needs a read-only token: create one with role viewer (POST /api/v1/tokens with "role": "viewer")');
    }
    succeeded();
    request.user = found.user;
    const maxAge = found.expiresAt === null ? 365 * 86_400 : Math.max(1, Math.floor((found.expiresAt - Date.now()) / 1000));
    void reply.setCookie(KIOSK_COOKIE, request.body.token, { path: '/', httpOnly: true, sameSite: 'strict', secure: request.protocol === 'https', maxAge });
    return { user: userView(found.user) };
  });
};

export const sessionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/auth/me', {
    schema: { tags: ['auth'], summary: 'The signed-in user', response: { 200: Type.Object({ user: UserRef }), ...errors(401) } },
  }, async (request) => ({ user: userView((await app.users.findById(request.user!.id)) ?? request.user!) }));

  // Signing out takes access away: it must work even while the disk refuses the audit entry (which then waits).
  app.post('/auth/logout', {
    config: { audit: { action: 'logout', transactional: false } },
    schema: { tags: ['auth'], summary: 'Sign out: ends this session and closes the sockets it opened', response: { 204: Type.Null(), ...errors(401) } },
  }, async (request, reply) => {
    const credential = request.credential!;
    if (credential.kind === 'session') await app.endCredentials({ session: credential.hash }, 'signed out');
    void reply.clearCookie(SESSION_COOKIE, { path: '/' });
    reply.code(204);
    return null;
  });

  app.post('/auth/password', {
    config: { audit: 'auth.password' },
    preHandler: async (request) => {
      const body = request.body as { current_password: string };
      const succeeded = startAttempt(app.loginThrottle, request, request.user!.username);
      if (!(await verifyPassword(body.current_password, (await app.users.passwordHash(request.user!.id)) ?? UNUSABLE_PASSWORD_HASH))) {
        throw new ApiError(403, ErrorCode.invalidCredentials, 'the current password is wrong');
      }
      succeeded();
      await hashBodyPassword('new_password')(request);
    },
    schema: {
      tags: ['auth'], summary: 'Change your own password: your other sessions end (and their sockets close)',
      description: 'Wrong current passwords count as failed sign-ins (429 once too many).',
      body: Type.Object({ current_password: Type.String({ minLength: 1, maxLength: 1024 }), new_password: NewPassword }, { additionalProperties: false }),
      response: { 200: Type.Object({ user: UserRef }), ...errors(400, 401, 403, 429) },
    },
  }, async (request) => {
    const { user, credential } = request;
    await app.users.setPasswordHash(user!.id, hashedPassword(request));
    await app.endCredentials({ userId: user!.id, tokens: false, keep: credential }, 'the password was changed: sign in again');
    return { user: userView((await app.users.findById(user!.id))!) };
  });
};
