import type { EnrollmentView } from '@dvic/protocol';
import type { Db } from '../db/database.js';

/** Enrollments as their views (no secret is ever given to this store), and the SSH host keys met. */
export class EnrollmentsRepository {
  constructor(private readonly db: Db) {}

  save(view: EnrollmentView): void {
    this.db.prepare('INSERT INTO enrollments (id, view, created_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET view = excluded.view')
      .run(view.id, JSON.stringify(view), view.created_at);
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
