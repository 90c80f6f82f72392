import type { Sql } from '../db/sql.js';
import { writeNow, type WriteScheduler } from '../services/deferred-writes.js';
import { effectiveRole, toUser, USER_COLUMNS, type Role, type User, type UserRow } from './users-repository.js';

/** What a scoped token may call: `metrics`, only GET /metrics (a Prometheus scraper). */
export type TokenScope = 'metrics';

export interface ApiToken {
  id: number;
  name: string;
  /** First characters of the token, to tell tokens apart in lists. */
  prefix: string;
  /** What the token may do: at most its user's role (null: its user's role). */
  role: Role;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
  /** null: every route its role allows. */
  scope: TokenScope | null;
}

interface TokenRow {
  id: number; name: string; prefix: string; role: Role | null; user_role: Role; created_at: number; expires_at: number | null;
  last_used_at: number | null; revoked_at: number | null; scope: TokenScope | null;
}

const toToken = (r: TokenRow): ApiToken => ({
  id: r.id, name: r.name, prefix: r.prefix, role: effectiveRole(r.user_role, r.role), createdAt: r.created_at, expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at, revokedAt: r.revoked_at, scope: r.scope ?? null,
});

const SELECT = 'SELECT t.*, u.role AS user_role FROM api_tokens t JOIN users u ON u.id = t.user_id';

/** API tokens for scripts and the CLI. Only the SHA-256 of a token is stored. */
export class ApiTokensRepository {
  constructor(private readonly sql: Sql, private readonly deferred: WriteScheduler = writeNow) {}

  async create(userId: number, name: string, prefix: string, tokenHash: string, options: { role?: Role | null; expiresAt?: number | null; scope?: TokenScope | null } = {}): Promise<ApiToken> {
    const row = await this.sql.get<{ id: number }>(
      'INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at, role, expires_at, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id',
      [userId, name, prefix, tokenHash, Date.now(), options.role ?? null, options.expiresAt ?? null, options.scope ?? null]);
    return (await this.get(row!.id))!;
  }

  async get(id: number): Promise<ApiToken | undefined> {
    const row = await this.sql.get<TokenRow>(`${SELECT} WHERE t.id = ?`, [id]);
    return row && toToken(row);
  }

  async listForUser(userId: number): Promise<ApiToken[]> {
    return (await this.sql.all<TokenRow>(`${SELECT} WHERE t.user_id = ? ORDER BY t.id`, [userId])).map(toToken);
  }

  /**
   * The user of an unrevoked, unexpired token of an enabled user, acting with the token's role, and
   * when the token expires. `recordUse` notes the use (a request; not a check of an open socket).
   */
  async authenticate(tokenHash: string, now = Date.now(), recordUse = true): Promise<{ user: User; expiresAt: number | null; scope: TokenScope | null } | undefined> {
    const row = await this.sql.get<UserRow & { token_id: number; token_role: Role | null; token_expires_at: number | null; token_scope: TokenScope | null }>(`
      SELECT ${USER_COLUMNS}, t.id AS token_id, t.role AS token_role, t.expires_at AS token_expires_at, t.scope AS token_scope FROM api_tokens t JOIN users u ON u.id = t.user_id
      WHERE t.token_hash = ? AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?) AND u.disabled_at IS NULL`, [tokenHash, now]);
    if (!row) return undefined;
    if (recordUse) {
      await this.deferred.run(`token-used:${row.token_id}`, () => this.sql.run('UPDATE api_tokens SET last_used_at = ? WHERE id = ?', [now, row.token_id]));
    }
    const user = toUser(row);
    return { user: { ...user, role: effectiveRole(user.role, row.token_role) }, expiresAt: row.token_expires_at, scope: row.token_scope ?? null };
  }

  /** The hashes of a user's active tokens (to close what they opened), then revokes them all. */
  async revokeAllForUser(userId: number, now = Date.now()): Promise<string[]> {
    const rows = await this.sql.all<{ token_hash: string }>(
      'UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL RETURNING token_hash', [now, userId]);
    return rows.map((r) => r.token_hash);
  }

  async hashOf(id: number): Promise<string | undefined> {
    return (await this.sql.get<{ token_hash: string }>('SELECT token_hash FROM api_tokens WHERE id = ?', [id]))?.token_hash;
  }

  /** Revokes a token of this user; undefined when there is no active one with that id. */
  async revoke(userId: number, id: number): Promise<ApiToken | undefined> {
    const { changes } = await this.sql.run('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL', [Date.now(), id, userId]);
    return changes ? this.get(id) : undefined;
  }
}
