import type { LogRecord } from '@dvic/protocol';
import { levelNumber, type NewLogRecord } from '../../repositories/logs-repository.js';

/** Converts a shipped record to a stored one; a timestamp the server cannot read becomes arrival time. */
export function toNewRecord(
  record: LogRecord,
  where: Pick<NewLogRecord, 'nodeId' | 'source' | 'stream' | 'demo' | 'token'>,
  offset: number | null,
  now: number,
): NewLogRecord {
  const parsed = Date.parse(record.ts);
  const fields = { ...(record.fields as Record<string, unknown> | undefined) };
  if (!Number.isFinite(parsed)) fields.original_ts = record.ts;
  if (record.split) fields.split = true;
  return {
    ...where, offset, ts: Number.isFinite(parsed) ? parsed : now, level: levelNumber(record.level),
    message: record.message, fields: Object.keys(fields).length ? fields : null,
  };
}
