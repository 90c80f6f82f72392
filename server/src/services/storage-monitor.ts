import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { StorageStatus } from '@dvic/protocol';
import { ErrorCode } from '@dvic/protocol';
import { DB_FILE, SEARCH_FILE } from '../db/store.js';
import type { StoreFailure } from './store-failure.js';

export interface StorageMonitorEvents {
  changed: [StorageStatus];
}

export interface StorageLimits {
  /** Free space kept on the data directory's filesystem (DVIC_MIN_FREE_MB). */
  minFreeBytes: number;
  /** The log store's size cap (DVIC_LOG_RETENTION_MB). */
  maxBytes: number;
  checkIntervalMs: number;
}

/** The database, its WAL and the search index: what the server writes, as files on disk. */
export const STORE_FILES = [DB_FILE, SEARCH_FILE].flatMap((name) => [name, `${name}-wal`, `${name}-shm`]);
/** The write-ahead logs among them: they come and go with checkpoints. */
export const WAL_FILES = STORE_FILES.filter((name) => name.endsWith('-wal'));

/**
 * Watches the data directory's disk: free space against the floor, and the store's real size.
 * A failed write (full disk) is reported here and checked at once; the state recovers by itself
 * when space comes back. While full, `refusal` says what to answer instead of writing.
 */
export class StorageMonitor extends EventEmitter<StorageMonitorEvents> {
  private current: StorageStatus;
  private timer: NodeJS.Timeout | undefined;
  private lastWriteFailedAt = 0;

  constructor(private readonly dataDir: string, private readonly limits: StorageLimits, readOnly = false) {
    super();
    this.current = {
      state: readOnly ? 'read_only' : 'ok', since: Date.now(), message: readOnly ? 'the database could not be opened for writing' : '',
      free_bytes: 0, min_free_bytes: limits.minFreeBytes, used_bytes: 0, max_bytes: limits.maxBytes,
    };
    this.check();
  }

  get status(): StorageStatus {
    return this.current;
  }

  /** What to answer a write while the disk is full; null when writes may go ahead. */
  get refusal(): StoreFailure | null {
    const { state, message } = this.current;
    return state === 'full' || state === 'read_only' ? { code: ErrorCode.storageFull, message, retryAfterMs: 5000 } : null;
  }

  start(): void {
    this.timer = setInterval(() => this.check(), this.limits.checkIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A write failed: look at the disk now. */
  writeFailed(failure: StoreFailure): void {
    if (failure.code !== ErrorCode.storageFull) return;
    this.lastWriteFailedAt = Date.now();
    this.check();
  }

  /** Bytes of the store's files on disk (allocated blocks, so sparse files count for what they use). */
  usedBytes(names = STORE_FILES): number {
    let total = 0;
    for (const name of names) {
      try {
        total += fs.statSync(path.join(this.dataDir, name)).blocks * 512;
      } catch {
        // not there
      }
    }
    return total;
  }

  freeBytes(): number {
    const s = fs.statfsSync(this.dataDir);
    return s.bavail * s.bsize;
  }

  check(now = Date.now()): StorageStatus {
    const free = this.freeBytes();
    const used = this.usedBytes();
    const { minFreeBytes } = this.limits;
    const recentFailure = now - this.lastWriteFailedAt < this.limits.checkIntervalMs;
    let state: StorageStatus['state'];
    let message: string;
    if (this.current.state === 'read_only') {
      state = 'read_only';
      message = this.current.message;
    } else if (free <= minFreeBytes || (recentFailure && free <= 2 * minFreeBytes)) {
      state = 'full';
      message = `the disk of ${this.dataDir} is full (${mib(free)} free, ${mib(minFreeBytes)} kept free): new logs are refused until space is freed`;
    } else if (free <= 2 * minFreeBytes) {
      state = 'low';
      message = `the disk of ${this.dataDir} is almost full (${mib(free)} free)`;
    } else {
      state = 'ok';
      message = '';
    }
    const changed = state !== this.current.state;
    this.current = { state, since: changed ? now : this.current.since, message, free_bytes: free, min_free_bytes: minFreeBytes, used_bytes: used, max_bytes: this.limits.maxBytes };
    if (changed) this.emit('changed', this.current);
    return this.current;
  }
}

const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;
