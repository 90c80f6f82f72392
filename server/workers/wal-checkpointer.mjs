// Worker thread (db/checkpointer.ts): takes the WAL checkpoints of the main database with its own
// connection, so the main thread never waits for the disk inside a commit.
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const Database = createRequire(import.meta.url)('better-sqlite3');
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');

function checkpoint(mode) {
  try {
    db.pragma(`wal_checkpoint(${mode})`);
  } catch {
    // busy: the next round takes it
  }
}

const timer = setInterval(() => checkpoint('PASSIVE'), workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint('TRUNCATE');
  db.close();
  process.exit(0);
});
