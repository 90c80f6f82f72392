import type { Sql } from '../db/sql.js';
import { writeNow, type WriteScheduler } from '../services/deferred-writes.js';
import { toUser, USER_COLUMNS, type User, type UserRow } from './users-repository.js';

/**
 * Browser sessions. Only the SHA-256 of the cookie value is stored. While the disk refuses
 * writes, sign-in and sign-out still take effect at once: the change is held in memory until the
 * database has it.
 */
export class SessionsRepository {
  /** Sessions created while the disk refused them. */
  private readonly unstored = new Map<string, { userId: number; expiresAt: number }>();
  /** Sessions ended whose row the disk has not let us delete yet. */
  private readonly ended = new Set<string>();

  constructor(private readonly sql: Sql, private readonly deferred: WriteScheduler = writeNow) {}

  async create(tokenHash: string, userId: number, ttlMs: number): Promise<void> {
    const now = Date.now();
    this.unstored.set(tokenHash, { userId, expiresAt: now + ttlMs });
    await this.deferred.run(`session:${tokenHash}`, async () => {
      await this.sql.run('INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)', [tokenHash, userId, now, now + ttlMs]);
      this.unstored.delete(tokenHash);
    });
  }

  /** The user of a live session of an enabled user, and when the session ends. */
  async find(tokenHash: string, now = Date.now()): Promise<{ user: User; expiresAt: number } | undefined> {
    if (this.ended.has(tokenHash)) return undefined;
    const unstored = this.unstored.get(tokenHash);
    if (unstored) {
      if (unstored.expiresAt <= now) return undefined;
      const row = await this.sql.get<UserRow>(`SELECT ${USER_COLUMNS} FROM users u WHERE u.id = ? AND u.disabled_at IS NULL`, [unstored.userId]);
      return row && { user: toUser(row), expiresAt: unstored.expiresAt };
    }
    const row = await this.sql.get<UserRow & { session_expires_at: number }>(`
      SELECT ${USER_COLUMNS}, s.expires_at AS session_expires_at FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL`, [tokenHash, now]);
    return row && { user: toUser(row), expiresAt: row.session_expires_at };
  }

  async delete(tokenHash: string): Promise<void> {
    this.unstored.delete(tokenHash);
    this.ended.add(tokenHash);
    // Replaces a creation still waiting: a session signed out before it was stored is never stored.
    await this.deferred.run(`session:${tokenHash}`, async () => {
      await this.sql.run('DELETE FROM sessions WHERE token_hash = ?', [tokenHash]);
      this.ended.delete(tokenHash);
    });
  }

  /** Ends every session of a user but the one kept (a password change keeps the session that made it). */
  async deleteForUser(userId: number, keepHash: string | null = null): Promise<number> {
    for (const [hash, session] of this.unstored) if (session.userId === userId && hash !== keepHash) this.unstored.delete(hash);
    return (await this.sql.run('DELETE FROM sessions WHERE user_id = ? AND token_hash IS DISTINCT FROM ?', [userId, keepHash])).changes;
  }

  /** Housekeeping: a disk that refuses it only postpones it to the next start. */
  async deleteExpired(now = Date.now()): Promise<number> {
    try {
      return (await this.sql.run('DELETE FROM sessions WHERE expires_at <= ?', [now])).changes;
    } catch (err) {
      this.deferred.report(err, 'deleting expired sessions');
      return 0;
    }
  }
}
