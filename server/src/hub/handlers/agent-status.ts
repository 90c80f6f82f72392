import type { AgentStatusMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';

/** The agent's own health (workers, skipped files, unreadable journal), shown with its node. */
export function handleAgentStatus(ctx: HandlerContext, message: AgentStatusMessage): void {
  ctx.services.registry.recordAgentStatus(ctx.nodeId, message.data);
}
