import { useMemo } from 'preact/hooks';
import { celsius, hottest, percent } from '@dvic/protocol/shared';
import { Banners } from '../components/banners.js';
import { StatusBadge } from '../components/status.js';
import { onLink } from '../router.js';
import { useNodes } from '../state/use-live.js';
import { useNow } from './overview.js';

/** The big screen of the lab: one tile per node, anything down first and in red. */
export function Wall() {
  const state = useNodes();
  const now = useNow();
  const tiles = useMemo(() => [...state.byId.values()].sort((a, b) =>
    Number(a.node.status === 'online') - Number(b.node.status === 'online') || a.node.name.localeCompare(b.node.name)), [state.version]);
  const down = tiles.filter((t) => t.node.status !== 'online').length;
  return (
    <main class="wall">
      <header>
        <h1>{down ? `${down} down` : 'All up'} <span class="muted">· {tiles.length} nodes</span></h1>
        <a href="/" onClick={(e) => onLink(e, '/')}>Leave wall mode</a>
      </header>
      <Banners />
      <div class="tiles">
        {tiles.map(({ node }) => {
          const hw = node.status === 'online' ? node.hardware : null;
          const deadDemos = node.demo_summary.total - node.demo_summary.alive;
          return (
            <article key={node.id} class={`tile ${node.status !== 'online' || deadDemos ? 'down' : ''}`} aria-label={`${node.name} ${node.status}`}>
              <h2>{node.name}</h2>
              <StatusBadge status={node.status} since={node.status_since} now={now} />
              <p>CPU {percent(hw?.cpu.total_pct)} · {celsius(hottest(hw))}</p>
              {node.demo_summary.total > 0 && <p>{deadDemos ? `⚠ ${deadDemos} demo${deadDemos > 1 ? 's' : ''} down` : `${node.demo_summary.alive} demos up`}</p>}
            </article>
          );
        })}
      </div>
    </main>
  );
}
