import type { DemoView, NodeDemosLiveMessage } from '@dvic/protocol/shared';

/** A node's whole list of demo runs with the runs one node.demos told (changed, or forgotten). */
export function withToldDemos<N extends { id: string; demos: DemoView[] }>(node: N, told: NodeDemosLiveMessage): N {
  if (told.data.node_id !== node.id) return node;
  const byToken = new Map(node.demos.map((d) => [d.token, d]));
  for (const d of told.data.demos) byToken.set(d.token, d);
  for (const token of told.data.removed ?? []) byToken.delete(token);
  return { ...node, demos: [...byToken.values()] };
}
