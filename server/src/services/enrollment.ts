import type { AgentConfigFile, NodeView } from '@dvic/protocol';
import type { NodeRegistry } from '../live/node-registry.js';
import { generateNodeKeypair } from './node-keys.js';

/** How a new agent reaches this server, decided by the request that enrolls it (and DVIC_PUBLIC_URL, DVIC_REPLICA_URLS). */
export interface ServerIdentity {
  agentUrl: string;
  /** The agent URL of every replica of the lab, in the listed order (DVIC_REPLICA_URLS); empty: one server. */
  replicaAgentUrls: string[];
  tlsCertSha256?: string;
  metricsIntervalS: number;
}

/** The server's part of every agent config handed out (POST /nodes, install links, SSH enrollment): one place writes it. */
export function agentConfigServer(server: ServerIdentity): Pick<AgentConfigFile, 'server_url' | 'server_urls' | 'metrics_interval_s' | 'tls_cert_sha256'> {
  return {
    server_url: server.agentUrl,
    // The agent tries server_url first, then these in order, each once (agent/dvic_agent.py server_list).
    ...(server.replicaAgentUrls.length ? { server_urls: server.replicaAgentUrls } : {}),
    metrics_interval_s: server.metricsIntervalS,
    ...(server.tlsCertSha256 ? { tls_cert_sha256: server.tlsCertSha256 } : {}),
  };
}

/**
 * Enrolls a node: a new keypair, of which the server keeps only the public key, and the agent's
 * config file (private key included), handed over once.
 */
export async function enrollNode(
  registry: NodeRegistry,
  request: { name: string; labels?: Record<string, string> },
  server: ServerIdentity,
): Promise<{ node: NodeView; config: AgentConfigFile }> {
  const keys = generateNodeKeypair();
  const node = await registry.create({ name: request.name, labels: request.labels, publicKeyPem: keys.publicKeyPem });
  return { node, config: { ...agentConfigServer(server), node_id: node.id, private_key: keys.privateKeyPem } };
}

/** The agent endpoint as a caller reached this server, unless DVIC_PUBLIC_URL says otherwise. */
export function agentUrl(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, '').replace(/^http/, 'ws')}/api/v1/agent`;
}
