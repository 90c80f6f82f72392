import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../errors.js';
import { ApiTokensRepository } from '../repositories/api-tokens-repository.js';
import { SessionsRepository } from '../repositories/sessions-repository.js';
import { UsersRepository, type User } from '../repositories/users-repository.js';
import { CredentialSockets, type Credential, type SocketOwner } from '../services/credential-sockets.js';
import { LoginThrottle } from '../services/login-throttle.js';
import { sha256Hex } from '../services/tokens.js';

export type { Credential };

export const SESSION_COOKIE = 'dvic_session';
/** A wall TV's read-only API token, set by POST /api/v1/auth/kiosk: it stands for a Bearer header. */
export const KIOSK_COOKIE = 'dvic_kiosk';

/** How often open sockets are checked against credentials ended outside this process. */
const SOCKET_SWEEP_MS = 10_000;

/** What a request carries: its user and credential, or why it has none. */
type Identity = { user: User; credential: Credential } | { user: null; reason: string | null };

declare module 'fastify' {
  interface FastifyInstance {
    users: UsersRepository;
    sessions: SessionsRepository;
    apiTokens: ApiTokensRepository;
    loginThrottle: LoginThrottle;
    /** Open sockets by credential and user: ending a credential closes them (sessionEnded). */
    credentialSockets: CredentialSockets;
    /** onRequest hook of every protected route: a session cookie (browsers) or a Bearer API token. */
    authenticate: (request: FastifyRequest) => Promise<void>;
    /** The user a request's credentials belong to, if they are valid; records and refuses nothing. */
    identify: (request: FastifyRequest) => Promise<User | null>;
    /**
     * Ends credentials in the database and, once that commits, closes the sockets they opened:
     * one session or token, or every session (and optionally token) of a user but the one kept.
     */
    endCredentials: (target: EndTarget, reason: string) => Promise<void>;
  }
  interface FastifyRequest {
    user: User | null;
    credential: Credential | null;
  }
}

/** One session (deleted here), one token (revoked by the caller, who checks it is theirs), or every session of a user (and their tokens too) but the session kept; by hash. */
export type EndTarget =
  | { session: string }
  | { token: string }
  | { userId: number; tokens: boolean; keep?: Credential | null };

/** Users, browser sessions and API tokens (only hashes are stored), the login throttle, and the sockets they opened. */
export const authPlugin = fp(async (app) => {
  const { sql, config } = app;
  const users = new UsersRepository(sql, app.deferredWrites);
  const sessions = new SessionsRepository(sql, app.deferredWrites);
  const apiTokens = new ApiTokensRepository(sql, app.deferredWrites);
  await sessions.deleteExpired();
  const isValid = async (c: Credential) => (c.kind === 'session' ? await sessions.find(c.hash) : await apiTokens.authenticate(c.hash, Date.now(), false)) !== undefined;
  const sockets = new CredentialSockets(isValid, SOCKET_SWEEP_MS, app.log.child({ component: 'credential-sockets' }));
  app.decorate('users', users);
  app.decorate('sessions', sessions);
  app.decorate('apiTokens', apiTokens);
  app.decorate('loginThrottle', new LoginThrottle(config.loginMaxFailures, config.loginWindowMs));
  app.decorate('credentialSockets', sockets);
  app.decorateRequest('user', null);
  app.decorateRequest('credential', null);
  app.addHook('onClose', async () => sockets.stop());

  /** Upgrades that authenticated, until their socket exists (ws emits 'connection' with the raw request). */
  const upgrading = new WeakMap<IncomingMessage, SocketOwner>();
  app.addHook('onReady', async () => {
    app.websocketServer.on('connection', (socket, raw) => {
      const owner = upgrading.get(raw);
      if (owner) sockets.register(socket, owner);
    });
  });

  async function identity(request: FastifyRequest, recordUse: boolean): Promise<Identity> {
    const kiosk = request.cookies[SESSION_COOKIE] ? undefined : request.cookies[KIOSK_COOKIE];
    const header = request.headers.authorization ?? (kiosk ? `Bearer ${kiosk}` : undefined);
    if (header?.startsWith('Bearer ')) {
      const hash = sha256Hex(header.slice(7).trim());
      const found = await apiTokens.authenticate(hash, Date.now(), recordUse);
      return found ? { user: found.user, credential: { kind: 'token', hash, expiresAt: found.expiresAt, scope: found.scope } } : { user: null, reason: 'invalid, expired or revoked API token' };
    }
    const cookie = request.cookies[SESSION_COOKIE];
    if (!cookie) return { user: null, reason: null };
    const hash = sha256Hex(cookie);
    const found = await sessions.find(hash);
    return found ? { user: found.user, credential: { kind: 'session', hash, expiresAt: found.expiresAt } } : { user: null, reason: 'session expired: sign in again' };
  }

  app.decorate('identify', async (request: FastifyRequest) => (await identity(request, false)).user);

  app.decorate('authenticate', async (request: FastifyRequest) => {
    const found = await identity(request, true);
    if (!found.user) return refuse(request, found.reason ?? 'sign in first');
    request.user = found.user;
    request.credential = found.credential;
    if (request.ws) upgrading.set(request.raw, { userId: found.user.id, credential: found.credential });
  });

  app.decorate('endCredentials', async (target: EndTarget, reason: string) => {
    if ('session' in target) {
      await sessions.delete(target.session);
      sql.afterCommit(() => sockets.endCredential('session', target.session, reason));
      return;
    }
    if ('token' in target) {
      sql.afterCommit(() => sockets.endCredential('token', target.token, reason));
      return;
    }
    const keep = target.keep?.kind === 'session' ? target.keep : null;
    await sessions.deleteForUser(target.userId, keep?.hash ?? null);
    if (target.tokens) await apiTokens.revokeAllForUser(target.userId);
    sql.afterCommit(() => sockets.endUser(target.userId, reason, { keep, kinds: target.tokens ? ['session', 'token'] : ['session'] }));
  });

  /** Refusals without usable credentials are counted per address, not written one by one. */
  function refuse(request: FastifyRequest, reason: string): never {
    app.auditTrail.unauthenticated(request.ip, reason, request.method, request.url);
    throw new ApiError(401, ErrorCode.unauthorized, reason);
  }
}, { name: 'auth', dependencies: ['db', 'audit', 'storage'] });
