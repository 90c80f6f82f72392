import type { DemoLogsMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';
import { logAnswers } from './log-answers.js';
import { toNewRecord } from './record-mapping.js';

/**
 * Stores a batch of demo log records. Each record is identified by (node, token, generation,
 * byte offset), so a batch sent again after a lost answer stores nothing twice.
 */
export function handleDemoLogs(ctx: HandlerContext, message: DemoLogsMessage): void {
  const { token, demo, start_offset, records, file_generation = 0 } = message.data;
  const now = Date.now();
  const where = { nodeId: ctx.nodeId, source: 'demo' as const, stream: `demo:${token}:${file_generation}`, demo, token };
  ctx.services.logWriter.write({
    nodeId: ctx.nodeId,
    records: records.map((r, i) => toNewRecord(r, where, r.offset ?? start_offset + i, now)),
    demo: { nodeId: ctx.nodeId, token, name: demo },
    ...logAnswers(ctx, message.id),
  });
}
