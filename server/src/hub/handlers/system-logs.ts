import type { SystemLogsMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';
import { logAnswers } from './log-answers.js';
import { toNewRecord } from './record-mapping.js';

type SystemRecord = SystemLogsMessage['data']['records'][number];

/** Where a journal record came from goes into its fields, so it is shown and filterable (field.unit=ssh.service). */
function withOrigin(record: SystemRecord): SystemRecord {
  const { unit, identifier, pid } = record;
  if (unit === undefined && identifier === undefined && pid === undefined) return record;
  return { ...record, fields: { ...record.fields, ...(unit === undefined ? {} : { unit }), ...(identifier === undefined ? {} : { identifier }), ...(pid === undefined ? {} : { pid }) } };
}

/** Stores journal/syslog records; records with an offset in their stream are stored once. */
export function handleSystemLogs(ctx: HandlerContext, message: SystemLogsMessage): void {
  const { source, stream = `system:${source}`, records } = message.data;
  const now = Date.now();
  const where = { nodeId: ctx.nodeId, source: 'system' as const, stream, demo: null, token: null };
  ctx.services.logWriter.write({
    nodeId: ctx.nodeId,
    records: records.map((r) => toNewRecord(withOrigin(r), where, r.offset ?? null, now)),
    ...logAnswers(ctx, message.id),
  });
}
