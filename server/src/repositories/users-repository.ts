import type { UserView } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import { writeNow, type WriteScheduler } from '../services/deferred-writes.js';

/** viewer: sees the lab; operator: also runs commands and terminals; admin: also manages nodes and users. */
export type Role = UserView['role'];

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** A token's role, capped by its user's (a demoted user's tokens are demoted with them). */
export const effectiveRole = (userRole: Role, tokenRole: Role | null): Role =>
  tokenRole !== null && RANK[tokenRole] < RANK[userRole] ? tokenRole : userRole;

export const roleRank = (role: Role): number => RANK[role];

export interface User {
  id: number;
  username: string;
  role: Role;
  createdAt: number;
  disabledAt: number | null;
  lastLoginAt: number | null;
}

/** The columns a User is read from, for the queries of the sessions and tokens repositories too. */
export const USER_COLUMNS = 'u.id, u.username, u.role, u.created_at, u.disabled_at, u.last_login_at';

export interface UserRow { id: number; username: string; role: Role; created_at: number; disabled_at: number | null; last_login_at: number | null }

export const toUser = (row: UserRow): User => ({
  id: row.id, username: row.username, role: row.role, createdAt: row.created_at, disabledAt: row.disabled_at, lastLoginAt: row.last_login_at,
});

/** What the API shows of a user (never the password hash). */
export const userView = (user: User): UserView => ({
  id: user.id, username: user.username, role: user.role, disabled: user.disabledAt !== null, created_at: user.createdAt, last_login_at: user.lastLoginAt,
});

export class UsersRepository {
  constructor(private readonly db: Db, private readonly deferred: WriteScheduler = writeNow) {}

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  }

  create(username: string, passwordHash: string, role: Role = 'admin'): User {
    const now = Date.now();
    const { lastInsertRowid } = this.db
      .prepare('INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)')
      .run(username, passwordHash, role, now);
    return this.findById(Number(lastInsertRowid))!;
  }

  list(): User[] {
    return (this.db.prepare(`SELECT ${USER_COLUMNS} FROM users u ORDER BY u.username`).all() as UserRow[]).map(toUser);
  }

  /** An enabled user with their password hash, to check a sign-in. */
  findWithHash(username: string): (User & { passwordHash: string }) | undefined {
    const row = this.db.prepare(`SELECT ${USER_COLUMNS}, u.password_hash FROM users u WHERE u.username = ? AND u.disabled_at IS NULL`)
      .get(username) as (UserRow & { password_hash: string }) | undefined;
    return row && { ...toUser(row), passwordHash: row.password_hash };
  }

  passwordHash(id: number): string | undefined {
    return (this.db.prepare('SELECT password_hash FROM users WHERE id = ?').get(id) as { password_hash: string } | undefined)?.password_hash;
  }

  findById(id: number): User | undefined {
    const row = this.db.prepare(`SELECT ${USER_COLUMNS} FROM users u WHERE u.id = ?`).get(id) as UserRow | undefined;
    return row && toUser(row);
  }

  findByName(username: string): User | undefined {
    const row = this.db.prepare(`SELECT ${USER_COLUMNS} FROM users u WHERE u.username = ?`).get(username) as UserRow | undefined;
    return row && toUser(row);
  }

  /** Enabled admins other than this user: the last one may not be removed, disabled or demoted. */
  otherActiveAdmins(id: number): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id != ?").get(id) as { n: number }).n;
  }

  update(id: number, change: { role?: Role; disabled?: boolean }, now = Date.now()): User | undefined {
    if (change.role !== undefined) this.db.prepare('UPDATE users SET role = ? WHERE id = ?').run(change.role, id);
    if (change.disabled === true) this.db.prepare('UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?').run(now, id);
    if (change.disabled === false) this.db.prepare('UPDATE users SET disabled_at = NULL WHERE id = ?').run(id);
    return this.findById(id);
  }

  setPasswordHash(id: number, passwordHash: string): void {
    this.db.prepare('UPDATE users SET password_hash = ? WHERE id = ?').run(passwordHash, id);
  }

  /** Notes a sign-in (later when the disk refuses it: signing in must work on a full disk). */
  recordLogin(id: number, now = Date.now()): void {
    this.deferred.run(`user-login:${id}`, () => this.db.prepare('UPDATE users SET last_login_at = ? WHERE id = ?').run(now, id));
  }

  /** Removes a user; their sessions and tokens go with them (ON DELETE CASCADE). */
  delete(id: number): boolean {
    return this.db.prepare('DELETE FROM users WHERE id = ?').run(id).changes > 0;
  }
}
