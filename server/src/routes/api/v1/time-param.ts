import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../../../errors.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** The range of a JavaScript Date (±100,000,000 days around 1970): beyond it a time means nothing. */
const MAX_TIME_MS = 8.64e15;

/** Reads a time query parameter: epoch ms, an RFC 3339 time, or a duration back from now ("10m"). */
export function parseTimeParam(name: string, value: string, now: number): number {
  const ms = parse(value, now);
  if (ms === null) throw new ApiError(400, ErrorCode.badRequest, `${name}: "${value}" is not a time (use 2026-11-24T10:00:00Z, epoch ms, or 10m / 2h / 7d)`);
  // Huge numbers become Infinity (or a time no date can show): refused, not read as "forever".
  if (!Number.isFinite(ms) || Math.abs(ms) > MAX_TIME_MS) {
    throw new ApiError(400, ErrorCode.badRequest, `${name}: "${value}" is out of range (a time between 271821 BC and 275760 AD)`);
  }
  return ms;
}

function parse(value: string, now: number): number | null {
  const duration = /^(\d+(?:\.\d+)?)([smhd])$/.exec(value);
  if (duration) return now - Number(duration[1]) * UNIT_MS[duration[2]!]!;
  if (/^\d+$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  if (Number.isFinite(ms) && /^\d{4}-\d{2}-\d{2}/.test(value)) return ms;
  return null;
}
