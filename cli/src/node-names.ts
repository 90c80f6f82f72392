import { call } from '@dvic/client';
import type { Connection } from './connection.js';

/**
 * Node names by id, to label output that spans nodes (logs of all nodes, a command fanned out).
 * Finding one node is the server's job (GET /api/v1/nodes/{ref}); this is only for display.
 */
export async function nodeNames(server: Connection): Promise<Map<string, string>> {
  const { nodes } = await call(server.api.GET('/api/v1/nodes'));
  return new Map(nodes.map((n) => [n.id, n.name]));
}
