import type { ExecOutputMessage, ExecResultMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';

export function handleExecOutput(ctx: HandlerContext, message: ExecOutputMessage): void {
  ctx.services.commands.onOutput(ctx.nodeId, message);
}

export function handleExecResult(ctx: HandlerContext, message: ExecResultMessage): void {
  ctx.services.commands.onResult(ctx.nodeId, message);
}
