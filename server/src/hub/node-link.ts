import type { AgentHub, AgentHubEvents } from './agent-hub.js';

/**
 * What the services (commands, terminals, tunnels, updates, deploys, enrollments) use to talk to
 * node agents: the AgentHub itself on a single server, the cluster link (cluster/cluster-link.ts)
 * on a replica of a scaled-out lab, where a node held by another replica is reached through it.
 */
export interface NodeLink extends Pick<AgentHub, 'isConnected' | 'sendTo' | 'sendBinaryTo' | 'bufferedTo' | 'capabilities' | 'stopping'> {
  on<K extends keyof AgentHubEvents>(event: K, listener: (...args: AgentHubEvents[K]) => void): unknown;
  off<K extends keyof AgentHubEvents>(event: K, listener: (...args: AgentHubEvents[K]) => void): unknown;
}
