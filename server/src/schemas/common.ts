import { Type } from 'typebox';

export const ErrorBody = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String() }) },
  { $id: 'ErrorBody', description: 'Every error: a stable code (see @dvic/protocol ErrorCode) and a human message.' },
);

const errorRef = Type.Unsafe<{ error: { code: string; message: string } }>({ $ref: 'ErrorBody#' });

/** The error responses a route may give, for its response schema. */
export function errors(...codes: number[]): Record<number, typeof errorRef> {
  return Object.fromEntries(codes.map((c) => [c, errorRef]));
}

export const EpochMs = Type.Integer({ description: 'Milliseconds since the Unix epoch' });
export const NullableEpochMs = Type.Union([EpochMs, Type.Null()]);
