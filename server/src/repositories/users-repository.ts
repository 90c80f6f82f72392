import type { Db } from '../db/database.js';

/** admin: everything; viewer: sees the lab but may not run commands, open terminals or change nodes. */
export type Role = 'admin' | 'viewer';

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
    const row = this.db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
    return row && { ...toUser(row), passwordHash: row.password_hash };
  }

  findById(id: number): User | undefined {
    const row = this.db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
    return row && toUser(row);
  }
}
