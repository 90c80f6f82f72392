import type { ArtifactView } from '@dvic/protocol';
import type { Db } from '../db/database.js';

/** Artifact metadata; the bytes are files in the data dir (services/artifact-store.ts). */
export class ArtifactsRepository {
  constructor(private readonly db: Db) {}

  insert(artifact: ArtifactView): void {
    this.db.prepare(`INSERT INTO artifacts (id, name, version, size, sha256, format, created_at, created_by)
      VALUES (@id, @name, @version, @size, @sha256, @format, @created_at, @created_by)`).run(artifact);
  }

  get(id: string): ArtifactView | undefined {
    return this.db.prepare('SELECT * FROM artifacts WHERE id = ?').get(id) as ArtifactView | undefined;
  }

  byNameVersion(name: string, version: string): ArtifactView | undefined {
    return this.db.prepare('SELECT * FROM artifacts WHERE name = ? AND version = ?').get(name, version) as ArtifactView | undefined;
  }

  /** Newest first. */
  list(): ArtifactView[] {
    return this.db.prepare('SELECT * FROM artifacts ORDER BY created_at DESC, id').all() as ArtifactView[];
  }

  totalBytes(): number {
    return (this.db.prepare('SELECT COALESCE(SUM(size), 0) AS total FROM artifacts').get() as { total: number }).total;
  }

  delete(id: string): boolean {
    return this.db.prepare('DELETE FROM artifacts WHERE id = ?').run(id).changes > 0;
  }
}
