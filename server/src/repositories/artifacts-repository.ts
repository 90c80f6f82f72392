import type { ArtifactView } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';

/** Artifact metadata; the bytes are files in the data dir (services/artifact-store.ts). */
export class ArtifactsRepository {
  constructor(private readonly sql: Sql) {}

  async insert(a: ArtifactView): Promise<void> {
    await this.sql.run(`INSERT INTO artifacts (id, name, version, size, sha256, format, created_at, created_by)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [a.id, a.name, a.version, a.size, a.sha256, a.format, a.created_at, a.created_by]);
  }

  async get(id: string): Promise<ArtifactView | undefined> {
    return this.sql.get<ArtifactView>('SELECT * FROM artifacts WHERE id = ?', [id]);
  }

  async byNameVersion(name: string, version: string): Promise<ArtifactView | undefined> {
    return this.sql.get<ArtifactView>('SELECT * FROM artifacts WHERE name = ? AND version = ?', [name, version]);
  }

  /** Newest first. */
  async list(): Promise<ArtifactView[]> {
    return this.sql.all<ArtifactView>('SELECT * FROM artifacts ORDER BY created_at DESC, id');
  }

  async totalBytes(): Promise<number> {
    return (await this.sql.get<{ total: number }>('SELECT COALESCE(SUM(size), 0) AS total FROM artifacts'))!.total;
  }

  async delete(id: string): Promise<boolean> {
    return (await this.sql.run('DELETE FROM artifacts WHERE id = ?', [id])).changes > 0;
  }
}
