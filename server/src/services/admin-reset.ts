import type { Sql } from '../db/sql.js';
import { AuditRepository } from '../repositories/audit-repository.js';
import { SessionsRepository } from '../repositories/sessions-repository.js';
import { UsersRepository } from '../repositories/users-repository.js';
import { ADMIN_USERNAME } from './admin-bootstrap.js';
import { generatePassword, hashPassword } from './passwords.js';

/**
 * The way back in: gives the `admin` user (created if it was removed) a new password,
 * DVIC_ADMIN_PASSWORD or a generated one, the admin role, enables it and ends its sessions (a
 * running server closes their sockets within seconds). Audited as admin.reset.
 */
export async function resetAdmin(sql: Sql, password: string | undefined): Promise<{ username: string; password: string; generated: boolean; created: boolean }> {
  const chosen = password ?? generatePassword();
  const hash = await hashPassword(chosen);
  const users = new UsersRepository(sql);
  const created = await sql.transaction(async () => {
    const existing = await users.findByName(ADMIN_USERNAME);
    const user = existing ?? (await users.create(ADMIN_USERNAME, hash, 'admin'));
    await users.setPasswordHash(user.id, hash);
    await users.update(user.id, { role: 'admin', disabled: false });
    await new SessionsRepository(sql).deleteForUser(user.id);
    await new AuditRepository(sql).append({
      user_id: user.id, username: ADMIN_USERNAME, source_ip: null, action: 'admin.reset', target: String(user.id), outcome: 'ok',
      details: { created: !existing, generated: password === undefined, by: 'reset-admin script' },
    });
    return !existing;
  });
  return { username: ADMIN_USERNAME, password: chosen, generated: password === undefined, created };
}
