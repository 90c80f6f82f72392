import type { EnrollmentTokenView, EnrollmentView } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';

/** The state inside an enrollment's view (JSON text): the dialects read JSON differently. */
const STATE = { sqlite: "json_extract(view, '$.state')", postgres: "(view::jsonb ->> 'state')" } as const;
/** An enrollment under way: its secrets live in the memory of the process that runs it. */
const UNFINISHED = {
  sqlite: `${STATE.sqlite} IN ('running', 'awaiting_host_key')`, postgres: `${STATE.postgres} IN ('running', 'awaiting_host_key')`,
} as const;

/** Enrollments as their views (no secret is ever given to this store), and the SSH host keys met. */
export class EnrollmentsRepository {
  /** owner: the replica whose process runs the enrollments this one inserts (docs/scale-out.md). */
  constructor(private readonly sql: Sql, private readonly owner = '') {}

  /** Inserts or updates the view; the owner is the inserting replica's and stays. */
  async save(view: EnrollmentView): Promise<void> {
    await this.sql.run('INSERT INTO enrollments (id, view, created_at, owner_replica) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET view = excluded.view',
      [view.id, JSON.stringify(view), view.created_at, this.owner]);
  }

  /** Runs fn once the current transaction (if any) has committed: nothing is published for a refused change. */
  afterCommit(fn: () => void): void {
    this.sql.afterCommit(fn);
  }

  /** Enrollments a server restart interrupted (their password was in the old process's memory only), of one owner or of all. */
  async unfinished(owner?: string): Promise<EnrollmentView[]> {
    const rows = await this.sql.all<{ view: string }>(`SELECT view FROM enrollments WHERE ${UNFINISHED[this.sql.dialect]}${owner === undefined ? '' : ' AND owner_replica = ?'}`,
      owner === undefined ? [] : [owner]);
    return rows.map((r) => JSON.parse(r.view) as EnrollmentView);
  }

  /** The replicas that own enrollments under way. */
  async unfinishedOwners(): Promise<string[]> {
    return (await this.sql.all<{ owner_replica: string }>(`SELECT DISTINCT owner_replica FROM enrollments WHERE ${UNFINISHED[this.sql.dialect]}`)).map((r) => r.owner_replica);
  }

  async get(id: string): Promise<EnrollmentView | undefined> {
    const row = await this.sql.get<{ view: string }>('SELECT view FROM enrollments WHERE id = ?', [id]);
    return row ? (JSON.parse(row.view) as EnrollmentView) : undefined;
  }

  /** The node installed at host:port before, with the host key it had then. */
  async knownHost(host: string, port: number): Promise<{ nodeId: string; fingerprint: string } | undefined> {
    const row = await this.sql.get<{ node_id: string; host_key_fingerprint: string }>(
      'SELECT node_id, host_key_fingerprint FROM node_ssh_hosts WHERE host = ? AND port = ?', [host, port]);
    return row ? { nodeId: row.node_id, fingerprint: row.host_key_fingerprint } : undefined;
  }

  async rememberHost(host: string, port: number, nodeId: string, fingerprint: string): Promise<void> {
    await this.sql.run(`INSERT INTO node_ssh_hosts (host, port, node_id, host_key_fingerprint) VALUES (?, ?, ?, ?)
      ON CONFLICT (host, port) DO UPDATE SET node_id = excluded.node_id, host_key_fingerprint = excluded.host_key_fingerprint`,
    [host, port, nodeId, fingerprint]);
  }
}

interface TokenRow { id: string; labels: string; max_uses: number; uses: number; expires_at: number; created_at: number }

const toTokenView = (r: TokenRow): EnrollmentTokenView => ({
  id: r.id, labels: JSON.parse(r.labels) as Record<string, string>, max_uses: r.max_uses, uses: r.uses, expires_at: r.expires_at, created_at: r.created_at,
});

const TOKEN_COLUMNS = 'id, labels, max_uses, uses, expires_at, created_at';

/** Install-link tokens: only their SHA-256 is stored. */
export class EnrollmentTokensRepository {
  constructor(private readonly sql: Sql) {}

  async create(id: string, tokenHash: string, input: { labels: Record<string, string>; maxUses: number; expiresAt: number }): Promise<EnrollmentTokenView> {
    const row = await this.sql.get<TokenRow>(`INSERT INTO enrollment_tokens (id, token_hash, labels, max_uses, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
      RETURNING ${TOKEN_COLUMNS}`, [id, tokenHash, JSON.stringify(input.labels), input.maxUses, input.expiresAt, Date.now()]);
    return toTokenView(row!);
  }

  async byId(id: string): Promise<EnrollmentTokenView | undefined> {
    const row = await this.sql.get<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM enrollment_tokens WHERE id = ?`, [id]);
    return row && toTokenView(row);
  }

  async byHash(tokenHash: string): Promise<EnrollmentTokenView | undefined> {
    const row = await this.sql.get<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM enrollment_tokens WHERE token_hash = ?`, [tokenHash]);
    return row && toTokenView(row);
  }

  /** Counts one use, only while uses remain; false when none did (two installs racing: one wins). */
  async use(id: string): Promise<boolean> {
    return (await this.sql.run('UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = ? AND uses < max_uses', [id])).changes === 1;
  }
}
