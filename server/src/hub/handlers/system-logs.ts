import type { SystemLogsMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';
import { logAnswers } from './log-answers.js';
import { toNewRecord } from './record-mapping.js';

/** Stores journal/syslog records; records with an offset in their stream are stored once. */
export function handleSystemLogs(ctx: HandlerContext, message: SystemLogsMessage): void {
  const { source, stream = `system:${source}`, records } = message.data;
  const now = Date.now();
  const where = { nodeId: ctx.nodeId, source: 'system' as const, stream, demo: null, token: null };
  ctx.services.logWriter.write({
    records: records.map((r) => toNewRecord(r, where, r.offset ?? null, now)),
    ...logAnswers(ctx, message.id),
  });
}
