import { ErrorCode } from '@dvic/protocol';
import { InjectedFault } from './fault-injection.js';

/** Why a write failed, as an agent or a client can act on it: what to say and when to retry. */
export interface StoreFailure {
  code: typeof ErrorCode.storageFull | typeof ErrorCode.storageFailed | typeof ErrorCode.overloaded;
  message: string;
  retryAfterMs: number;
}

const FULL_CODES = new Set(['SQLITE_FULL', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC', 'SQLITE_IOERR_SHMSIZE', 'SQLITE_READONLY', 'ENOSPC']);

/** Classifies an error thrown by a write: a full disk is retried later, anything else sooner. */
export function storeFailure(err: unknown): StoreFailure {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (FULL_CODES.has(code) || code.startsWith('SQLITE_READONLY'))) {
    return { code: ErrorCode.storageFull, message: 'the server cannot write: its disk is full', retryAfterMs: 5000 };
  }
  const message = err instanceof InjectedFault ? err.message : `the server could not store this (${typeof code === 'string' ? code : 'error'})`;
  return { code: ErrorCode.storageFailed, message, retryAfterMs: 1000 };
}
