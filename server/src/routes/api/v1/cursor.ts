import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../../../errors.js';

/** An opaque page cursor: the sort key and id of the last item of the previous page. */
export const encodeCursor = (key: number, id: number | string) => Buffer.from(`${key}:${id}`).toString('base64url');

/** Reads a cursor this server gave; anything else is a 400. */
export function decodeCursor<T>(cursor: string, make: (key: string, id: string) => T): T {
  const [key, id, extra] = Buffer.from(cursor, 'base64url').toString().split(':');
  if (!key || !id || extra !== undefined || !Number.isSafeInteger(Number(key))) {
    throw new ApiError(400, ErrorCode.badRequest, 'cursor is not one this server gave');
  }
  return make(key, id);
}
