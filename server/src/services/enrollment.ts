import type { AgentConfigFile, NodeView } from '@dvic/protocol';
import type { NodeRegistry } from '../live/node-registry.js';
import { generateNodeKeypair } from './node-keys.js';

/**
 * Enrolls a node: a new keypair, of which the server keeps only the public key, and the agent's
 * config file (private key included), handed over once.
 */
export async function enrollNode(
  registry: NodeRegistry,
  request: { name: string; labels?: Record<string, string>; serverUrl: string; tlsCertSha256?: string; metricsIntervalS: number },
): Promise<{ node: NodeView; config: AgentConfigFile }> {
  const keys = generateNodeKeypair();
  const node = await registry.create({ name: request.name, labels: request.labels, publicKeyPem: keys.publicKeyPem });
  return {
    node,
    config: {
      server_url: request.serverUrl, node_id: node.id, private_key: keys.privateKeyPem, metrics_interval_s: request.metricsIntervalS,
      ...(request.tlsCertSha256 ? { tls_cert_sha256: request.tlsCertSha256 } : {}),
    },
  };
}

/** The agent endpoint as a caller reached this server, unless DVIC_PUBLIC_URL says otherwise. */
export function agentUrl(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, '').replace(/^http/, 'ws')}/api/v1/agent`;
}
