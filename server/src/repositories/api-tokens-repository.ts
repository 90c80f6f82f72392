import type { Db } from '../db/database.js';
import type { DeferredWrites } from '../services/deferred-writes.js';
import type { Role, User } from './users-repository.js';

export interface ApiToken {
  id: number;
  name: string;
  /** First characters of the token, to tell tokens apart in lists. */
  prefix: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

interface TokenRow { id: number; name: string; prefix: string; created_at: number; last_used_at: number | null; revoked_at: number | null }

const toToken = (r: TokenRow): ApiToken => ({
  id: r.id, name: r.name, prefix: r.prefix, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at,
});

/** API tokens for scripts and the CLI. Only the SHA-256 of a token is stored. */
export class ApiTokensRepository {
  constructor(private readonly db: Db, private readonly deferred: DeferredWrites) {}

  create(userId: number, name: string, prefix: string, tokenHash: string): ApiToken {
    const now = Date.now();
    const { lastInsertRowid } = this.db
      .prepare('INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(userId, name, prefix, tokenHash, now);
    return { id: Number(lastInsertRowid), name, prefix, createdAt: now, lastUsedAt: null, revokedAt: null };
  }

  listForUser(userId: number): ApiToken[] {
    const rows = this.db.prepare('SELECT * FROM api_tokens WHERE user_id = ? ORDER BY id').all(userId) as TokenRow[];
    return rows.map(toToken);
  }

  /** The user owning an unrevoked token; records the use (later when the disk refuses it: a read must not fail on a full disk). */
  authenticate(tokenHash: string, now = Date.now()): User | undefined {
    const row = this.db.prepare(`
      SELECT t.id AS token_id, u.id, u.username, u.role, u.created_at FROM api_tokens t JOIN users u ON u.id = t.user_id
      WHERE t.token_hash = ? AND t.revoked_at IS NULL`).get(tokenHash) as
      { token_id: number; id: number; username: string; role: Role; created_at: number } | undefined;
    if (!row) return undefined;
    this.deferred.run(`token-used:${row.token_id}`, () => this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(now, row.token_id));
    return { id: row.id, username: row.username, role: row.role, createdAt: row.created_at };
  }

  /** Revokes a token of this user; false when there is none with that id. */
  revoke(userId: number, id: number): ApiToken | undefined {
    const changed = this.db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL')
      .run(Date.now(), id, userId).changes;
    if (!changed) return undefined;
    return toToken(this.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as TokenRow);
  }
}
