import type { ExecOutputMessage, ExecResultMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';

/** Command output and results go to whoever runs commands (the command service listens). */
export function handleExecOutput(ctx: HandlerContext, message: ExecOutputMessage): void {
  ctx.relay('exec.output', message);
}

export function handleExecResult(ctx: HandlerContext, message: ExecResultMessage): void {
  ctx.relay('exec.result', message);
}
