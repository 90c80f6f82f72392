import type { Db } from '../db/database.js';
import type { DeferredWrites } from '../services/deferred-writes.js';
import type { Role, User } from './users-repository.js';

interface UserRow { id: number; username: string; role: Role; created_at: number }

const toUser = (row: UserRow): User => ({ id: row.id, username: row.username, role: row.role, createdAt: row.created_at });

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

  constructor(private readonly db: Db, private readonly deferred: DeferredWrites) {}

  create(tokenHash: string, userId: number, ttlMs: number): void {
    const now = Date.now();
    this.unstored.set(tokenHash, { userId, expiresAt: now + ttlMs });
    this.deferred.run(`session:${tokenHash}`, () => {
      this.db.prepare('INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)')
        .run(tokenHash, userId, now, now + ttlMs);
      this.unstored.delete(tokenHash);
    });
  }

  findUser(tokenHash: string, now = Date.now()): User | undefined {
    if (this.ended.has(tokenHash)) return undefined;
    const unstored = this.unstored.get(tokenHash);
    if (unstored) {
      if (unstored.expiresAt <= now) return undefined;
      const row = this.db.prepare('SELECT id, username, role, created_at FROM users WHERE id = ?').get(unstored.userId) as UserRow | undefined;
      return row && toUser(row);
    }
    const row = this.db.prepare(`
      SELECT u.id, u.username, u.role, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.token_hash = ? AND s.expires_at > ?`).get(tokenHash, now) as UserRow | undefined;
    return row && toUser(row);
  }

  delete(tokenHash: string): void {
    this.unstored.delete(tokenHash);
    this.ended.add(tokenHash);
    // Replaces a creation still waiting: a session signed out before it was stored is never stored.
    this.deferred.run(`session:${tokenHash}`, () => {
      this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash);
      this.ended.delete(tokenHash);
    });
  }

  /** Housekeeping: a disk that refuses it only postpones it to the next start. */
  deleteExpired(now = Date.now()): number {
    try {
      return this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now).changes;
    } catch (err) {
      this.deferred.report(err, 'deleting expired sessions');
      return 0;
    }
  }
}
