import type { UserView } from '@dvic/protocol';
import type { Db } from '../db/database.js';

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
}

interface UserRow { id: number; username: string; role: Role; created_at: number; password_hash: string }

const toUser = (row: UserRow): User => ({ id: row.id, username: row.username, role: row.role, createdAt: row.created_at });

export class UsersRepository {
  constructor(private readonly db: Db) {}

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  }

  create(username: string, passwordHash: string, role: Role = 'admin'): User {
    const now = Date.now();
    const { lastInsertRowid } = this.db
      .prepare('INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)')
      .run(username, passwordHash, role, now);
    return { id: Number(lastInsertRowid), username, role, createdAt: now };
  }

  findWithHash(username: string): (User & { passwordHash: string }) | undefined {
    const row = this.db.prepare('SELECT * FROM users WHERE username = ? AND disabled_at IS NULL').get(username) as UserRow | undefined;
    return row && { ...toUser(row), passwordHash: row.password_hash };
  }

  findById(id: number): User | undefined {
    const row = this.db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
    return row && toUser(row);
  }
}
