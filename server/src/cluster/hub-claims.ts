import type { FastifyBaseLogger } from 'fastify';
import type { AgentHub } from '../hub/agent-hub.js';
import type { NodeHolders } from './node-holders.js';

/**
 * Keeps the node-holder registry in step with the agents connected to this replica: a node is
 * claimed when its agent authenticates here and released when its connection ends (a connection
 * replaced by a newer one is released, then the newer one claimed, in that order on the bus).
 * Returns the function that unbinds it.
 */
export function claimHubNodes(hub: AgentHub, holders: NodeHolders, log: FastifyBaseLogger): () => void {
  const claim = (nodeId: string) => {
    holders.claim(nodeId, hub.capabilities(nodeId)).catch((err: Error) => log.warn({ nodeId, err: err.message }, 'cannot claim the node on the bus: the next renewal tries again'));
  };
  const release = (nodeId: string) => {
    holders.release(nodeId).catch((err: Error) => log.warn({ nodeId, err: err.message }, 'cannot release the node on the bus: its claim expires with the lease'));
  };
  hub.on('connected', claim);
  hub.on('disconnected', release);
  return () => {
    hub.off('connected', claim);
    hub.off('disconnected', release);
  };
}
