import type { UpdateFetchMessage, UpdateStatusMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';

/** Self-update progress and file requests go to the agent-update service (it listens). */
export function handleUpdateStatus(ctx: HandlerContext, message: UpdateStatusMessage): void {
  ctx.relay('update.status', message);
}

export function handleUpdateFetch(ctx: HandlerContext, message: UpdateFetchMessage): void {
  ctx.relay('update.fetch', message);
}
