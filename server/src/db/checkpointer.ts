import { BackgroundWorker } from './background-worker.js';
import type { Db } from './database.js';

/** Default WAL size past which a checkpoint comes before its interval. */
export const WAL_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * Takes WAL checkpoints away from the main thread (server/workers/wal-checkpointer.mjs). SQLite
 * otherwise checkpoints inside the commit that crosses 1,000 WAL pages, and that commit then waits
 * for the disk (hundreds of ms on a busy SD card), holding up every agent's acknowledgement. If
 * the worker cannot run, SQLite's own automatic checkpoints stay on.
 *
 * A checkpoint comes every intervalMs, or sooner once the WAL passes walLimitBytes; with
 * journal_size_limit (db/store.ts) the WAL file is cut back to that size when it restarts, so
 * it stays near the limit however fast logs come.
 */
export class Checkpointer {
  private readonly background: BackgroundWorker;

  constructor(db: Db, file: string, intervalMs = 1000, onError: (err: Error) => void = () => undefined, walLimitBytes = WAL_LIMIT_BYTES) {
    this.background = new BackgroundWorker('wal-checkpointer.mjs', { file, intervalMs, walLimitBytes });
    this.background.worker.once('online', () => db.pragma('wal_autocheckpoint = 0'));
    this.background.worker.once('error', (err) => {
      db.pragma('wal_autocheckpoint = 1000');
      onError(err);
    });
  }

  /** A last full checkpoint, then the worker ends. */
  stop(): Promise<void> {
    return this.background.stop('stop');
  }
}
