import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { conflictOnUnique } from '../../../db/unique-violation.js';
import { ApiError, notFound } from '../../../errors.js';
import { userView, type User } from '../../../repositories/users-repository.js';
import { errors } from '../../../schemas/common.js';
import { UserRef } from '../../../schemas/protocol-schemas.js';
import { hashBodyPassword, hashedPassword, NewPassword } from './password-body.js';

const RoleParam = Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')]);
const UserParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) });
const Username = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.@-]*$', description: 'Letters, digits, dot, dash, underscore, @' });

/** Users: admins manage them (every change audited; passwords are never written to the audit log). */
export const usersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { users } = app;

  const find = async (id: number): Promise<User> => {
    const user = await users.findById(id);
    if (!user) throw notFound(`user ${id}`);
    return user;
  };
  /** The last enabled admin keeps the lab manageable: it may not be removed, disabled or demoted. */
  const keepAnAdmin = async (user: User, what: string) => {
    if (user.role === 'admin' && user.disabledAt === null && (await users.otherActiveAdmins(user.id)) === 0) {
      throw new ApiError(409, ErrorCode.conflict, `${user.username} is the last admin: it cannot be ${what} (make another admin first)`);
    }
  };

  app.get('/users', {
    config: { role: 'admin' },
    schema: { tags: ['users'], summary: 'Every user', response: { 200: Type.Object({ users: Type.Array(UserRef) }), ...errors(401, 403) } },
  }, async () => ({ users: (await users.list()).map(userView) }));

  app.post('/users', {
    config: { role: 'admin', audit: 'user.create' },
    preHandler: hashBodyPassword('password'),
    schema: {
      tags: ['users'], summary: 'Add a user',
      body: Type.Object({ username: Username, password: NewPassword, role: RoleParam }, { additionalProperties: false }),
      response: { 201: Type.Object({ user: UserRef }), ...errors(400, 401, 403, 409) },
    },
  }, async (request, reply) => {
    const { username, role } = request.body;
    const taken = `user ${username} already exists`;
    if (await users.findByName(username)) throw new ApiError(409, ErrorCode.conflict, taken);
    const user = await conflictOnUnique(users.create(username, hashedPassword(request), role), taken);
    reply.code(201);
    return { user: userView(user) };
  });

  app.patch('/users/:id', {
    config: { role: 'admin', audit: 'user.update' },
    schema: {
      tags: ['users'], summary: "Change a user's role, or disable (sessions and tokens end, sockets close) or enable them",
      params: UserParams,
      body: Type.Object({ role: Type.Optional(RoleParam), disabled: Type.Optional(Type.Boolean()) }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: Type.Object({ user: UserRef }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request) => {
    const user = await find(request.params.id);
    const { role, disabled } = request.body;
    if (role !== undefined && role !== 'admin') await keepAnAdmin(user, 'demoted');
    if (disabled === true) await keepAnAdmin(user, 'disabled');
    const updated = (await users.update(user.id, { role, disabled }))!;
    if (disabled === true && user.disabledAt === null) {
      await app.endCredentials({ userId: user.id, tokens: true }, 'your account was disabled');
    } else if (role !== undefined && role !== user.role) {
      // Sockets were opened with the old role's rights: the user reconnects with the new ones.
      app.sql.afterCommit(() => app.credentialSockets.endUser(user.id, `your role changed to ${role}: reconnect`));
    }
    return { user: userView(updated) };
  });

  app.delete('/users/:id', {
    config: { role: 'admin', audit: 'user.delete' },
    schema: {
      tags: ['users'], summary: 'Remove a user: their sessions and tokens end, their sockets close (the audit log keeps their name)',
      params: UserParams, response: { 200: Type.Object({ user: UserRef }), ...errors(401, 403, 404, 409) },
    },
  }, async (request) => {
    const user = await find(request.params.id);
    await keepAnAdmin(user, 'removed');
    await app.endCredentials({ userId: user.id, tokens: true }, 'your account was removed');
    await users.delete(user.id);
    return { user: userView(user) };
  });

  app.post('/users/:id/password', {
    config: { role: 'admin', audit: 'user.password-reset' },
    preHandler: hashBodyPassword('password'),
    schema: {
      tags: ['users'], summary: "Reset a user's password: their sessions end and their sockets close (API tokens stay)",
      params: UserParams,
      body: Type.Object({ password: NewPassword }, { additionalProperties: false }),
      response: { 200: Type.Object({ user: UserRef }), ...errors(400, 401, 403, 404) },
    },
  }, async (request) => {
    const user = await find(request.params.id);
    await users.setPasswordHash(user.id, hashedPassword(request));
    await app.endCredentials({ userId: user.id, tokens: false }, 'your password was reset: sign in again');
    return { user: userView(await find(user.id)) };
  });
};
