import type { TerminalCloseMessage, TerminalOpenedMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';

export function handleTerminalOpened(ctx: HandlerContext, message: TerminalOpenedMessage): void {
  ctx.services.terminals.onOpened(ctx.nodeId, message);
}

export function handleTerminalClose(ctx: HandlerContext, message: TerminalCloseMessage): void {
  ctx.services.terminals.onAgentClose(ctx.nodeId, message);
}
