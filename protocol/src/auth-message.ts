/**
 * The exact bytes an agent signs to prove it holds the node's private key. Binding the node id
 * stops a signature made for one node from being presented for another; the nonce is fresh per
 * connection, so a captured hello is useless on any other connection.
 */
export function authMessage(nonce: string, nodeId: string): string {
  return `dvic-agent-auth:v1:${nonce}:${nodeId}`;
}
