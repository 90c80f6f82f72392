import type { UserView } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';
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
  constructor(private readonly sql: Sql, private readonly deferred: WriteScheduler = writeNow) {}

  async count(): Promise<number> {
    return Number((await this.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM users'))!.n);
  }

  /** Adds a user; a name already taken is a constraint error from the database (UNIQUE username). */
  async create(username: string, passwordHash: string, role: Role = 'admin'): Promise<User> {
    const row = await this.sql.get<UserRow>(`INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)
      RETURNING ${USER_COLUMNS.replace(/u\./g, '')}`, [username, passwordHash, role, Date.now()]);
    return toUser(row!);
  }

  async list(): Promise<User[]> {
    return (await this.sql.all<UserRow>(`SELECT ${USER_COLUMNS} FROM users u ORDER BY u.username`)).map(toUser);
  }

  /** An enabled user with their password hash, to check a sign-in. */
  async findWithHash(username: string): Promise<(User & { passwordHash: string }) | undefined> {
    const row = await this.sql.get<UserRow & { password_hash: string }>(
      `SELECT ${USER_COLUMNS}, u.password_hash FROM users u WHERE u.username = ? AND u.disabled_at IS NULL`, [username]);
    return row && { ...toUser(row), passwordHash: row.password_hash };
  }

  async passwordHash(id: number): Promise<string | undefined> {
    return (await this.sql.get<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = ?', [id]))?.password_hash;
  }

  async findById(id: number): Promise<User | undefined> {
    const row = await this.sql.get<UserRow>(`SELECT ${USER_COLUMNS} FROM users u WHERE u.id = ?`, [id]);
    return row && toUser(row);
  }

  async findByName(username: string): Promise<User | undefined> {
    const row = await this.sql.get<UserRow>(`SELECT ${USER_COLUMNS} FROM users u WHERE u.username = ?`, [username]);
    return row && toUser(row);
  }

  /** Enabled admins other than this user: the last one may not be removed, disabled or demoted. */
  /**
   * On PostgreSQL the active admins' rows are locked until the caller's transaction ends (in id
   * order, so two requests never deadlock): under READ COMMITTED two admins demoting each other
   * would otherwise both see the other one and leave none. SQLite runs one transaction at a time.
   */
  async otherActiveAdmins(id: number): Promise<number> {
    if (this.sql.dialect === 'postgres') {
      const admins = await this.sql.all<{ id: number }>("SELECT id FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id FOR UPDATE");
      return admins.filter((admin) => Number(admin.id) !== id).length;
    }
    const row = await this.sql.get<{ n: number }>("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id <> ?", [id]);
    return Number(row!.n);
  }

  async update(id: number, change: { role?: Role; disabled?: boolean }, now = Date.now()): Promise<User | undefined> {
    if (change.role !== undefined) await this.sql.run('UPDATE users SET role = ? WHERE id = ?', [change.role, id]);
    if (change.disabled === true) await this.sql.run('UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?', [now, id]);
    if (change.disabled === false) await this.sql.run('UPDATE users SET disabled_at = NULL WHERE id = ?', [id]);
    return this.findById(id);
  }

  async setPasswordHash(id: number, passwordHash: string): Promise<void> {
    await this.sql.run('UPDATE users SET password_hash = ? WHERE id = ?', [passwordHash, id]);
  }

  /** Notes a sign-in (later when the disk refuses it: signing in must work on a full disk). */
  async recordLogin(id: number, now = Date.now()): Promise<void> {
    await this.deferred.run(`user-login:${id}`, () => this.sql.run('UPDATE users SET last_login_at = ? WHERE id = ?', [now, id]));
  }

  /** Removes a user; their sessions and tokens go with them (ON DELETE CASCADE). */
  async delete(id: number): Promise<boolean> {
    return (await this.sql.run('DELETE FROM users WHERE id = ?', [id])).changes > 0;
  }
}
