// Worker thread (db/checkpointer.ts): takes the WAL checkpoints of the main database with its own
// connection, so the main thread never waits for the disk inside a commit.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const Database = createRequire(import.meta.url)('better-sqlite3');
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');

/** How often the WAL's size is looked at: a fast writer gets a checkpoint before the WAL outgrows its limit. */
const WATCH_MS = Math.min(25, workerData.intervalMs);

function checkpoint(mode) {
  try {
    db.pragma(`wal_checkpoint(${mode})`);
  } catch {
    // busy or a full disk: the next round takes it
  }
}

function walBytes() {
  try {
    return fs.statSync(`${workerData.file}-wal`).size;
  } catch {
    return 0;
  }
}

// PASSIVE, never in a writer's way: on the interval, and as soon as the WAL passes its limit, so
// the frames are copied to the database here rather than in a commit. A passive checkpoint cannot
// restart a WAL that is written to all the time (a truncating one here would wait for the writer
// for ever): the writer itself truncates it past twice the limit (log retention), with little
// left to copy by then.
let last = Date.now();
const timer = setInterval(() => {
  if (walBytes() <= workerData.walLimitBytes && Date.now() - last < workerData.intervalMs) return;
  last = Date.now();
  checkpoint('PASSIVE');
}, WATCH_MS);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint('TRUNCATE');
  db.close();
  process.exit(0);
});
