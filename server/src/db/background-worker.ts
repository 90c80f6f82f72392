import { Worker } from 'node:worker_threads';

/**
 * A worker thread from server/workers/ that never holds the process open while it runs, but is
 * waited for (up to a limit) when stopped, so it finishes its last transaction or checkpoint.
 */
export class BackgroundWorker {
  readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(file: string, workerData: unknown) {
    // Same relative path from src/db (tests) and dist/db (the built server).
    this.worker = new Worker(new URL(`../../workers/${file}`, import.meta.url), { workerData });
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Sends the stop message, waits for the worker to exit on its own (10 s at most), then ends it. */
  async stop(message: unknown): Promise<void> {
    this.worker.ref();
    this.worker.postMessage(message);
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref());
    await Promise.race([this.exited, timeout]);
    await this.worker.terminate();
  }
}
