import type { HardwareStateMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';

export function handleHardwareState(ctx: HandlerContext, message: HardwareStateMessage): void {
  ctx.services.registry.recordHardware(ctx.nodeId, message.data);
}
