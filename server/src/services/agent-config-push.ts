import type { AgentConfig } from '@dvic/protocol';
import type { NodeLink } from '../hub/node-link.js';
import type { NodeRegistry } from '../live/node-registry.js';

/**
 * Merges settings into a node's agent config and pushes them to its agent once committed, through
 * the link (nodeLinkOf: on a replica, whichever replica holds the agent). `pushed`: whether the
 * agent is connected to the lab, so that the push goes out; a node offline gets them on its next
 * hello.
 */
export async function changeAgentConfig(registry: NodeRegistry, link: NodeLink, nodeId: string, change: AgentConfig): Promise<{ agent_config: AgentConfig; pushed: boolean }> {
  const agentConfig = await registry.updateAgentConfig(nodeId, change);
  const pushed = link.isConnected(nodeId);
  registry.afterCommit(() => { link.sendTo(nodeId, { type: 'config.push', data: change }); });
  return { agent_config: agentConfig, pushed };
}
