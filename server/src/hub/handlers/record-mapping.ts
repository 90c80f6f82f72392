import { levelNumber, type LogRecord } from '@dvic/protocol';
import type { NewLogRecord } from '../../repositories/logs-repository.js';

/** Converts a shipped record to a stored one; a timestamp the server cannot read becomes arrival time. */
export function toNewRecord(
  record: LogRecord,
  where: Pick<NewLogRecord, 'nodeId' | 'source' | 'stream' | 'demo' | 'token'>,
  offset: number | null,
  now: number,
): NewLogRecord {
  const parsed = Date.parse(record.ts);
  const readable = Number.isFinite(parsed);
  let fields = (record.fields as Record<string, unknown> | undefined) ?? null;
  if (!readable || record.split || record.lost_lines) {
    // Runs for every log line: a copy only when there is something to add.
    fields = {
      ...fields, ...(readable ? {} : { original_ts: record.ts }), ...(record.split ? { split: true } : {}),
      ...(record.lost_lines ? { lost_lines: record.lost_lines } : {}),
    };
  }
  return {
    nodeId: where.nodeId, source: where.source, stream: where.stream, demo: where.demo, token: where.token,
    offset, ts: readable ? parsed : now, level: levelNumber(record.level), message: record.message, fields,
  };
}
