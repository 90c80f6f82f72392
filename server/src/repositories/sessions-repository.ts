import type { Db } from '../db/database.js';
import { toUser, USER_COLUMNS, type User, type UserRow } from './users-repository.js';

/** Browser sessions. Only the SHA-256 of the cookie value is stored. */
export class SessionsRepository {
  constructor(private readonly db: Db) {}

  create(tokenHash: string, userId: number, ttlMs: number): void {
    const now = Date.now();
    this.db.prepare('INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)')
      .run(tokenHash, userId, now, now + ttlMs);
  }

  /** The user of a live session of an enabled user, and when the session ends. */
  find(tokenHash: string, now = Date.now()): { user: User; expiresAt: number } | undefined {
    const row = this.db.prepare(`
      SELECT ${USER_COLUMNS}, s.expires_at AS session_expires_at FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL`).get(tokenHash, now) as (UserRow & { session_expires_at: number }) | undefined;
    return row && { user: toUser(row), expiresAt: row.session_expires_at };
  }

  delete(tokenHash: string): void {
    this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash);
  }

  /** Ends every session of a user but the one kept (a password change keeps the session that made it). */
  deleteForUser(userId: number, keepHash: string | null = null): number {
    return this.db.prepare('DELETE FROM sessions WHERE user_id = ? AND token_hash IS NOT ?').run(userId, keepHash).changes;
  }

  deleteExpired(now = Date.now()): number {
    return this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now).changes;
  }
}
