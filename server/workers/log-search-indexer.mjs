// Worker thread (db/log-search-index.ts): copies new log records into the full-text index, which
// lives in its own SQLite file. The main thread stores and acknowledges records without waiting
// for this; indexing runs on another core and under another file's write lock.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
// The same folding as the matcher (search/text-query.ts): the index holds folded words.
import { indexText } from '../dist/search/text-query.js';

const Database = createRequire(import.meta.url)('better-sqlite3');

/** Records indexed per transaction: large enough to amortise a commit, small enough to stay responsive. */
const CHUNK = 2000;
/** After a run, new records wait this long to be indexed together (a wake-up does not cut it short). */
const GATHER_MS = 100;
/** With no wake-up, the worker still looks for new records this often. */
const IDLE_MS = 1000;
/** After a failure (a full disk, a busy database), the next try waits twice as long, up to this. */
const MAX_BACKOFF_MS = 60_000;

const logs = new Database(workerData.logsFile, { readonly: true, fileMustExist: true });
const index = new Database(workerData.indexFile, { fileMustExist: true });
for (const db of [logs, index]) db.pragma('busy_timeout = 5000');
// The index's WAL: checkpointed inside the commit that passes the limit (this is a worker: nobody
// waits for it), and cut back to the limit when it restarts.
index.pragma(`journal_size_limit = ${workerData.walLimitBytes}`);
index.pragma(`wal_autocheckpoint = ${Math.max(16, Math.floor(workerData.walLimitBytes / 4096))}`);

const readNew = logs.prepare('SELECT id, message FROM log_records WHERE id > ? ORDER BY id LIMIT ?');
const indexedUpTo = index.prepare('SELECT indexed_up_to FROM index_state').pluck();
const advance = index.prepare('UPDATE index_state SET indexed_up_to = ?');
const insert = index.prepare('INSERT INTO log_fts (rowid, message) VALUES (?, ?)');
const remove = index.prepare('DELETE FROM log_fts WHERE rowid = ?');

/** Indexes the next records after the watermark; returns how many. */
const indexChunk = index.transaction(() => {
  const rows = readNew.all(indexedUpTo.get(), CHUNK);
  for (const row of rows) insert.run(row.id, indexText(row.message));
  if (rows.length) advance.run(rows[rows.length - 1].id);
  return rows.length;
});

/** Takes deleted records out of the index; those past the watermark were never in it. */
const forgetNow = index.transaction((ids) => {
  const upTo = indexedUpTo.get();
  for (const id of ids) if (id <= upTo) remove.run(id);
});

let timer;
let due = Infinity;
let lastRun = 0;
let backoffMs = 0;
let lastError = '';
/** Deleted records still in the index: a failed removal is tried again at the next run. */
let toForget = [];

/** Reports a failure once (not at every retry) and slows the retries down. */
function failed(err) {
  if (err.message !== lastError) parentPort.postMessage({ type: 'error', message: err.message });
  lastError = err.message;
  backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(IDLE_MS, backoffMs * 2));
}

function recovered() {
  lastError = '';
  backoffMs = 0;
}

/** As the main database's (db/store.ts): the index file gives its free pages back, a step at a time. */
function compact() {
  index.pragma('wal_checkpoint(TRUNCATE)');
  for (let step = 0; step < 10_000; step++) {
    const free = index.pragma('freelist_count', { simple: true });
    if (free === 0) break;
    index.pragma('incremental_vacuum(256)');
    index.pragma('wal_checkpoint(TRUNCATE)');
    if (index.pragma('freelist_count', { simple: true }) >= free) break;
  }
}

function forgetPending() {
  if (toForget.length === 0) return;
  forgetNow(toForget);
  toForget = [];
}

function schedule(delayMs) {
  const at = Date.now() + delayMs;
  if (at >= due) return;
  clearTimeout(timer);
  due = at;
  timer = setTimeout(run, delayMs);
}

/** Under twice the free-space floor, the index waits: new logs are refused there (log retention), and so is its growth. */
function atFloor() {
  if (!workerData.minFreeBytes) return false;
  try {
    const { bavail, bsize } = fs.statfsSync(path.dirname(workerData.indexFile));
    return bavail * bsize < 2 * workerData.minFreeBytes;
  } catch {
    return false;
  }
}

function run() {
  due = Infinity;
  let indexed = 0;
  try {
    forgetPending();
    if (atFloor()) throw new Error('the disk is at its free-space floor: indexing waits for room');
    indexed = indexChunk();
    recovered();
    if (indexed) parentPort.postMessage({ type: 'indexed', count: indexed });
  } catch (err) {
    failed(err); // busy or a full disk: try again later, less often
  }
  lastRun = Date.now();
  schedule(backoffMs || (indexed === CHUNK ? 0 : IDLE_MS));
}

const handlers = {
  wake: () => { if (!backoffMs) schedule(Math.max(0, lastRun + GATHER_MS - Date.now())); },
  // Log retention deleted records: out of the index, and their pages back to the filesystem
  // (incremental vacuum, then a truncating checkpoint), before retention measures the files again.
  forget: ({ ids, ref }) => {
    for (const id of ids) toForget.push(id);
    try {
      forgetPending();
      compact();
    } catch (err) {
      failed(err);
    }
    parentPort.postMessage({ type: 'forgotten', ref });
  },
  stop: () => {
    clearTimeout(timer);
    logs.close();
    index.close();
    process.exit(0);
  },
};

parentPort.on('message', (message) => handlers[message.type]?.(message));
schedule(0);
