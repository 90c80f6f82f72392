import { CliError } from './errors.js';

export interface NamedNode {
  id: string;
  name: string;
}

/**
 * A node by full id, exact name, or unique id prefix. An ambiguous prefix is an error that lists
 * the candidates, so the user can pick.
 */
export function resolveNode<T extends NamedNode>(nodes: T[], ref: string): T {
  const exact = nodes.find((n) => n.id === ref || n.name === ref);
  if (exact) return exact;
  const candidates = ref.length >= 2 ? nodes.filter((n) => n.id.startsWith(ref.toLowerCase())) : [];
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0) throw new CliError(`no node "${ref}" (give its name, its id, or the start of its id)`);
  const list = candidates.map((n) => `${n.name} (${n.id})`).join(', ');
  throw new CliError(`"${ref}" matches ${candidates.length} nodes: ${list}`);
}
