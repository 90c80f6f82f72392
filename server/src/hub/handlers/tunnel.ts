import type { TunnelCloseMessage, TunnelOpenedMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';

/** Tunnel life-cycle messages go to the tunnel service (it listens). */
export function handleTunnelOpened(ctx: HandlerContext, message: TunnelOpenedMessage): void {
  ctx.relay('tunnel.opened', message);
}

export function handleTunnelClose(ctx: HandlerContext, message: TunnelCloseMessage): void {
  ctx.relay('tunnel.close', message);
}
