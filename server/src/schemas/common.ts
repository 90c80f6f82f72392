import { Type } from 'typebox';
import { ErrorRef } from './protocol-schemas.js';

/** The error responses a route may give, for its response schema. */
export function errors(...codes: number[]): Record<number, typeof ErrorRef> {
  return Object.fromEntries(codes.map((c) => [c, ErrorRef]));
}

export const EpochMs = Type.Integer({ description: 'Milliseconds since the Unix epoch' });
export const NullableEpochMs = Type.Union([EpochMs, Type.Null()]);
