import type { UsersRepository } from '../repositories/users-repository.js';
import { generatePassword, hashPassword } from './passwords.js';

export const ADMIN_USERNAME = 'admin';

export type AdminBootstrap =
  | { created: false }
  | { created: true; username: string; password: string; generated: boolean };

/**
 * Creates the admin user on first start, with DVIC_ADMIN_PASSWORD or a generated password that
 * the caller prints once. Later starts change nothing (the password is the user's to change), nor
 * does a replica that another one beat to it.
 */
export async function ensureAdmin(users: UsersRepository, password: string | undefined): Promise<AdminBootstrap> {
  if ((await users.count()) > 0) return { created: false };
  const chosen = password ?? generatePassword();
  try {
    await users.create(ADMIN_USERNAME, await hashPassword(chosen), 'admin');
  } catch (err) {
    // Replicas of a lab starting together on one database: the first one made it.
    if ((await users.count()) > 0) return { created: false };
    throw err;
  }
  return { created: true, username: ADMIN_USERNAME, password: chosen, generated: password === undefined };
}
