import { ErrorCode } from '@dvic/protocol';
import { InjectedFault } from './fault-injection.js';

/** Why a write failed, as an agent or a client can act on it: what to say and when to retry. */
export interface StoreFailure {
  code: typeof ErrorCode.storageFull | typeof ErrorCode.storageFailed | typeof ErrorCode.overloaded;
  message: string;
  retryAfterMs: number;
}

// PostgreSQL: 53100 disk_full, 53400 configuration_limit_exceeded (temp files).
const FULL_CODES = new Set(['SQLITE_FULL', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC', 'SQLITE_IOERR_SHMSIZE', 'SQLITE_READONLY', 'ENOSPC', 'EDQUOT', '53100']);
/** Conditions of the disk or the database that pass: the same write may succeed later. */
const PASSING_PREFIXES = [
  'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_IOERR', 'SQLITE_CANTOPEN', 'SQLITE_READONLY',
  // PostgreSQL unreachable or restarting (db/postgres-sql.ts DatabaseUnreachableError carries these):
  // the socket's errno, 08xxx connection exceptions, 57P01-03 shutting down / starting up,
  // 53300 too many connections; 40001 / 40P01 / 55P03, a transaction that lost a conflict; 57014 a
  // statement past statement_timeout, 25P03 a session ended idle in a transaction (db/postgres-timeouts.ts).
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE',
  '08000', '08001', '08003', '08004', '08006', '57P01', '57P02', '57P03', '53300', '53200', '40001', '40P01', '55P03', '57014', '25P03',
];

const codeOf = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
};

const isFull = (code: string) => FULL_CODES.has(code) || code.startsWith('SQLITE_READONLY');

export const FULL_DISK_MESSAGE = 'the server cannot write: its disk is full';

/** Classifies an error thrown by a write: a full disk is retried later, anything else sooner. */
export function storeFailure(err: unknown): StoreFailure {
  const code = codeOf(err);
  if (code !== undefined && isFull(code)) return { code: ErrorCode.storageFull, message: FULL_DISK_MESSAGE, retryAfterMs: 5000 };
  const message = err instanceof InjectedFault ? err.message : `the server could not store this (${code ?? 'error'})`;
  return { code: ErrorCode.storageFailed, message, retryAfterMs: 1000 };
}

/**
 * A write that failed because of the disk or a busy database (it may succeed later), as a
 * StoreFailure; null for any other error (a bug or a constraint: retrying would not help).
 */
export function passingStoreFailure(err: unknown): StoreFailure | null {
  const code = codeOf(err);
  if (code === undefined) return null;
  if (isFull(code) || PASSING_PREFIXES.some((p) => code.startsWith(p))) return storeFailure(err);
  return null;
}
