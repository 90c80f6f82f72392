import type { DemoStateMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';

export function handleDemoState(ctx: HandlerContext, message: DemoStateMessage): void {
  ctx.services.demos.applyState(ctx.nodeId, message.data.full, message.data.demos);
}
