import type { Db } from '../db/database.js';
import type { Role, User } from './users-repository.js';

/** Browser sessions. Only the SHA-256 of the cookie value is stored. */
export class SessionsRepository {
  constructor(private readonly db: Db) {}

  create(tokenHash: string, userId: number, ttlMs: number): void {
    const now = Date.now();
    this.db.prepare('INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)')
      .run(tokenHash, userId, now, now + ttlMs);
  }

  findUser(tokenHash: string, now = Date.now()): User | undefined {
    const row = this.db.prepare(`
      SELECT u.id, u.username, u.role, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL`).get(tokenHash, now) as
      { id: number; username: string; role: Role; created_at: number } | undefined;
    return row && { id: row.id, username: row.username, role: row.role, createdAt: row.created_at };
  }

  delete(tokenHash: string): void {
    this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash);
  }

  deleteExpired(now = Date.now()): number {
    return this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now).changes;
  }
}
