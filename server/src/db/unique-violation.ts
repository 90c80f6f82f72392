import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../errors.js';

/** A UNIQUE constraint refused the write: SQLite's code, or PostgreSQL's SQLSTATE 23505. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}

/**
 * Runs a write whose uniqueness the caller checked first: a concurrent request that won the race
 * (PostgreSQL READ COMMITTED lets both pass the check) answers 409 with the message, not a 500.
 */
export async function conflictOnUnique<T>(write: Promise<T>, message: string): Promise<T> {
  try {
    return await write;
  } catch (err) {
    if (isUniqueViolation(err)) throw new ApiError(409, ErrorCode.conflict, message);
    throw err;
  }
}
