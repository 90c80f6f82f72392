import type { EnrollmentTokenView, EnrollmentView } from '@dvic/protocol';
import type { Db } from '../db/database.js';

/** Enrollments as their views (no secret is ever given to this store), and the SSH host keys met. */
export class EnrollmentsRepository {
  constructor(private readonly db: Db) {}

  save(view: EnrollmentView): void {
    this.db.prepare('INSERT INTO enrollments (id, view, created_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET view = excluded.view')
      .run(view.id, JSON.stringify(view), view.created_at);
  }

  /** Enrollments a server restart interrupted (their password was in the old process's memory only). */
  unfinished(): EnrollmentView[] {
    return (this.db.prepare("SELECT view FROM enrollments WHERE json_extract(view, '$.state') IN ('running', 'awaiting_host_key')").all() as { view: string }[])
      .map((r) => JSON.parse(r.view) as EnrollmentView);
  }

  get(id: string): EnrollmentView | undefined {
    const row = this.db.prepare('SELECT view FROM enrollments WHERE id = ?').get(id) as { view: string } | undefined;
    return row ? (JSON.parse(row.view) as EnrollmentView) : undefined;
  }

  /** The node installed at host:port before, with the host key it had then. */
  knownHost(host: string, port: number): { nodeId: string; fingerprint: string } | undefined {
    const row = this.db.prepare('SELECT node_id, host_key_fingerprint FROM node_ssh_hosts WHERE host = ? AND port = ?').get(host, port) as
      { node_id: string; host_key_fingerprint: string } | undefined;
    return row ? { nodeId: row.node_id, fingerprint: row.host_key_fingerprint } : undefined;
  }

  rememberHost(host: string, port: number, nodeId: string, fingerprint: string): void {
    this.db.prepare(`INSERT INTO node_ssh_hosts (host, port, node_id, host_key_fingerprint) VALUES (?, ?, ?, ?)
      ON CONFLICT(host, port) DO UPDATE SET node_id = excluded.node_id, host_key_fingerprint = excluded.host_key_fingerprint`)
      .run(host, port, nodeId, fingerprint);
  }
}

interface TokenRow { id: string; labels: string; max_uses: number; uses: number; expires_at: number; created_at: number }

const toTokenView = (r: TokenRow): EnrollmentTokenView => ({
  id: r.id, labels: JSON.parse(r.labels) as Record<string, string>, max_uses: r.max_uses, uses: r.uses, expires_at: r.expires_at, created_at: r.created_at,
});

/** Install-link tokens: only their SHA-256 is stored. */
export class EnrollmentTokensRepository {
  constructor(private readonly db: Db) {}

  create(id: string, tokenHash: string, input: { labels: Record<string, string>; maxUses: number; expiresAt: number }): EnrollmentTokenView {
    this.db.prepare('INSERT INTO enrollment_tokens (id, token_hash, labels, max_uses, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, tokenHash, JSON.stringify(input.labels), input.maxUses, input.expiresAt, Date.now());
    return this.byId(id)!;
  }

  byId(id: string): EnrollmentTokenView | undefined {
    const row = this.db.prepare('SELECT * FROM enrollment_tokens WHERE id = ?').get(id) as TokenRow | undefined;
    return row && toTokenView(row);
  }

  byHash(tokenHash: string): EnrollmentTokenView | undefined {
    const row = this.db.prepare('SELECT * FROM enrollment_tokens WHERE token_hash = ?').get(tokenHash) as TokenRow | undefined;
    return row && toTokenView(row);
  }

  /** Counts one use, only while uses remain; false when none did. */
  use(id: string): boolean {
    return this.db.prepare('UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = ? AND uses < max_uses').run(id).changes === 1;
  }
}
