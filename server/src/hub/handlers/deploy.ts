import type { DeployFetchMessage, DeployStatusMessage } from '@dvic/protocol';
import type { HandlerContext } from './index.js';

/** Deploy progress and chunk requests go to the deployment service (it listens). */
export function handleDeployStatus(ctx: HandlerContext, message: DeployStatusMessage): void {
  ctx.relay('deploy.status', message);
}

export function handleDeployFetch(ctx: HandlerContext, message: DeployFetchMessage): void {
  ctx.relay('deploy.fetch', message);
}
