import type { ErrorMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';

/** An agent refused something the server sent: worth a warning, never a reply (no error loops). */
export function handleAgentError(ctx: HandlerContext, message: ErrorMessage): void {
  ctx.log.warn({ nodeId: ctx.nodeId, code: message.data.code, refType: message.data.ref_type }, `agent reported: ${message.data.message}`);
}
