import type { LogsRepository } from '../repositories/logs-repository.js';
import type { DiskFigures, RetentionIndex, RetentionStore } from './log-retention.js';

/**
 * Log retention's view of PostgreSQL: the log table's size on disk (pg_total_relation_size)
 * against DVIC_LOG_RETENTION_MB. Deleted rows do not shrink the table: VACUUM makes their room
 * reusable and new rows fill it, so the table stays near the cap. The data in it is estimated from
 * the stored bytes times the least disk-per-byte ratio seen (free room inside only raises that
 * ratio), so retention deletes what the cap needs, not again what it already freed. The GIN index
 * follows deletions by itself; the disk and the WAL are the database server's.
 */
export class PostgresLogSpace implements RetentionStore, RetentionIndex {
  /** Bytes on disk per stored record byte, the least seen. */
  private diskPerByte = Number.POSITIVE_INFINITY;

  constructor(private readonly logs: Pick<LogsRepository, 'storedBytes' | 'tableBytes' | 'vacuum'>) {}

  measure = async (): Promise<DiskFigures> => {
    const usedBytes = await this.logs.tableBytes();
    const stored = this.logs.storedBytes;
    if (stored > 0) this.diskPerByte = Math.min(this.diskPerByte, usedBytes / stored);
    const dataBytes = Number.isFinite(this.diskPerByte) ? Math.min(usedBytes, stored * this.diskPerByte) : usedBytes;
    return { usedBytes, walBytes: 0, dataBytes, indexBacklogBytes: 0, freeBytes: Number.POSITIVE_INFINITY };
  };

  async compact(): Promise<boolean> {
    await this.logs.vacuum();
    return true;
  }

  truncateWal(): boolean {
    return true;
  }

  async forget(): Promise<void> {}
}
