import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { hashPassword } from '../../../services/passwords.js';

export const MIN_PASSWORD_LENGTH = 8;

/** A new password: long enough, and never logged or audited (the audit trail redacts password fields). */
export const NewPassword = Type.String({ minLength: MIN_PASSWORD_LENGTH, maxLength: 1024, description: `At least ${MIN_PASSWORD_LENGTH} characters` });

const hashes = new WeakMap<FastifyRequest, string>();

/**
 * preHandler that hashes body[field] with scrypt (slow, async) before the audited handler, which
 * must be synchronous, stores it with hashedPassword().
 */
export function hashBodyPassword(field: string) {
  return async (request: FastifyRequest) => {
    hashes.set(request, await hashPassword((request.body as Record<string, string>)[field]!));
  };
}

export function hashedPassword(request: FastifyRequest): string {
  const hash = hashes.get(request);
  if (!hash) throw new Error('hashBodyPassword() must run before the handler');
  return hash;
}
