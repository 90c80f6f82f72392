import { isAgentBehind } from '@dvic/protocol/shared';
import { onLink } from '../router.js';

/** "↑ <shipped>" next to an agent older than the one the server ships: a link to update it. */
export function AgentBehind({ nodeId, version, shipped }: { nodeId: string; version: string | null; shipped: string | null }) {
  if (!isAgentBehind(version, shipped)) return null;
  const href = `/updates?node=${nodeId}`;
  return (
    <a class="badge warn" data-testid="agent-behind" href={href} title={`the server ships agent ${shipped}: update it`}
      onClick={(e) => { e.stopPropagation(); onLink(e, href); }}>↑ {shipped}</a>
  );
}
