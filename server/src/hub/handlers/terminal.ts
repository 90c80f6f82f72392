import type { TerminalCloseMessage, TerminalOpenedMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';

/** Terminal life-cycle messages go to the terminal relay (it listens). */
export function handleTerminalOpened(ctx: HandlerContext, message: TerminalOpenedMessage): void {
  ctx.relay('terminal.opened', message);
}

export function handleTerminalClose(ctx: HandlerContext, message: TerminalCloseMessage): void {
  ctx.relay('terminal.close', message);
}
