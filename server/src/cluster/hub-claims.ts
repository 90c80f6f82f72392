import type { FastifyBaseLogger } from 'fastify';
import type { AgentHub } from '../hub/agent-hub.js';
import type { NodeHolders } from './node-holders.js';
import { rateLimitedWarning } from './rate-limited-warning.js';

/**
 * Keeps the node-holder registry in step with the agents connected to this replica: a node is
 * claimed when its agent authenticates here and released when its connection ends (a connection
 * replaced by a newer one is released, then the newer one claimed, in that order on the bus).
 * Returns the function that unbinds it.
 */
export function claimHubNodes(hub: AgentHub, holders: NodeHolders, log: FastifyBaseLogger): () => void {
  // Once per few seconds with a count: with the bus away, 10,000 agents reconnecting fail 10,000 claims.
  const cannotClaim = rateLimitedWarning(log, 'cannot claim nodes on the bus: the next renewal tries again');
  const cannotRelease = rateLimitedWarning(log, 'cannot release nodes on the bus: their claims expire with the lease');
  const claim = (nodeId: string) => {
    holders.claim(nodeId, hub.capabilities(nodeId)).catch((err: Error) => cannotClaim({ nodeId, err: err.message }));
  };
  const release = (nodeId: string) => {
    holders.release(nodeId).catch((err: Error) => cannotRelease({ nodeId, err: err.message }));
  };
  hub.on('connected', claim);
  hub.on('disconnected', release);
  return () => {
    hub.off('connected', claim);
    hub.off('disconnected', release);
  };
}
