import { Worker } from 'node:worker_threads';
import type { Db } from './database.js';

/**
 * Takes WAL checkpoints away from the main thread (server/workers/wal-checkpointer.mjs). SQLite
 * otherwise checkpoints inside the commit that crosses 1,000 WAL pages, and that commit then waits
 * for the disk (hundreds of ms on a busy SD card), holding up every agent's acknowledgement. If
 * the worker cannot run, SQLite's own automatic checkpoints stay on.
 */
export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(db: Db, file: string, intervalMs = 1000, onError: (err: Error) => void = () => undefined) {
    // Same relative path from src/db (tests) and dist/db (the built server).
    this.worker = new Worker(new URL('../../workers/wal-checkpointer.mjs', import.meta.url), { workerData: { file, intervalMs } });
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.once('online', () => db.pragma('wal_autocheckpoint = 0'));
    this.worker.once('error', (err) => {
      db.pragma('wal_autocheckpoint = 1000');
      onError(err);
    });
  }

  /** A last full checkpoint, then the worker ends. */
  async stop(): Promise<void> {
    // Unreferenced while it runs, so it never holds the process open; referenced now, so the
    // process waits for the last checkpoint instead of exiting under it.
    this.worker.ref();
    this.worker.postMessage('stop');
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref());
    await Promise.race([this.exited, timeout]);
    await this.worker.terminate();
  }
}
