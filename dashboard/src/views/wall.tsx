import { useEffect, useMemo, useState } from 'preact/hooks';
import { duration } from '@dvic/protocol/shared';
import { live } from '../api/live.js';
import { Banners } from '../components/banners.js';
import { onLink } from '../router.js';
import { useLabDemos, useThrottled } from '../state/use-demos.js';
import { useDevices } from '../state/use-devices.js';
import { useLiveStatus, useNodes } from '../state/use-live.js';
import { tileLayout, wallProblems, wallSummary, type WallProblem } from '../state/wall.js';
import { useNow } from './overview.js';

/** Seconds each page shows when the problems do not fit on one screen. */
const PAGE_SECONDS = 10;
/** The header and the summary line take this share of the screen height; tiles the rest. */
const HEADER_SHARE = 0.2;

function useViewport(): { width: number; height: number } {
  const [size, setSize] = useState({ width: innerWidth, height: innerHeight });
  useEffect(() => {
    const update = () => setSize({ width: innerWidth, height: innerHeight });
    addEventListener('resize', update);
    return () => removeEventListener('resize', update);
  }, []);
  return size;
}

/** When the last live message arrived (the wall says how fresh it is). */
function useLastUpdate(): number {
  const [at, setAt] = useState(Date.now());
  useEffect(() => live.onMessages(() => setAt(Date.now())), []);
  return at;
}

/**
 * The big screen of the lab, for a TV across the room: problems first and big (down demos,
 * crashes, offline nodes, hot or full machines), everything fine as one calm line, a clock, and
 * how fresh it all is. No scrolling: tiles shrink to fit, or pages rotate.
 */
export function Wall() {
  const nodes = useNodes();
  const demos = useLabDemos();
  const devices = useDevices();
  const now = useNow(1000);
  const status = useLiveStatus();
  const updatedAt = useLastUpdate();
  const { width, height } = useViewport();
  // Worked out again at most once a second (the clock's tick), however busy the lab is.
  const version = useThrottled(`${nodes.version}:${demos.version}:${devices.version}`, 1000);
  const input = useMemo(() => ({ nodes: [...nodes.byId.values()].map((e) => e.node), demos: [...demos.byId.values()], devices: [...devices.byId.values()], now }), [version]);
  const problems = useMemo(() => wallProblems(input), [input]);
  const summary = useMemo(() => wallSummary(input), [input]);
  const pad = Math.round(height * 0.02);
  const area = { width: width - 2 * pad, height: height * (1 - HEADER_SHARE) - 2 * pad };
  const layout = tileLayout(problems.length, area.width, area.height, Math.max(72, height / 12));
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (layout.pages <= 1) return;
    const timer = setInterval(() => setTick((t) => t + 1), PAGE_SECONDS * 1000);
    return () => clearInterval(timer);
  }, [layout.pages]);
  const page = layout.pages > 1 ? tick % layout.pages : 0;
  const shown = problems.slice(page * layout.perPage, (page + 1) * layout.perPage);
  const lost = status.state !== 'open';
  // Marked once the tiles show what was fetched (the inputs are throttled), for bench/dashboard-1000.
  const drawn = demos.loaded && input.demos.length === demos.byId.size;
  useEffect(() => {
    if (drawn && !performance.getEntriesByName('dvic:wall-first-render').length) requestAnimationFrame(() => performance.mark('dvic:wall-first-render'));
  }, [drawn]);
  const base = Math.max(16, height / 40);

  return (
    <main class="wall" style={{ padding: `${pad}px`, fontSize: `${base}px` }} data-testid="wall">
      <header style={{ height: `${height * HEADER_SHARE - pad}px` }}>
        <div class="wall-title">
          <h1 class={problems.length ? 'bad' : 'ok'} data-testid="wall-headline">
            {problems.length ? `⚠ ${problems.length === 1 ? '1 problem' : `${problems.length} problems`}` : '✓ All fine'}
          </h1>
          <p class="wall-summary" data-testid="wall-summary">{summary}</p>
        </div>
        <div class="wall-clock">
          <time data-testid="wall-clock">{new Date(now).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })}</time>
          <p class={lost ? 'stale' : 'fresh'} data-testid="wall-updated" role={lost ? 'alert' : undefined}>
            {lost ? '⚠ live connection lost · ' : ''}updated {duration(Math.max(0, now - updatedAt))} ago
          </p>
          {layout.pages > 1 && <p class="muted" data-testid="wall-page">page {page + 1} of {layout.pages}</p>}
          <a class="wall-leave" href="/" onClick={(e) => onLink(e, '/')}>Leave wall mode</a>
        </div>
      </header>
      <Banners />
      <div class="wall-tiles" data-testid="wall-tiles"
        style={{ gridTemplateColumns: `repeat(${layout.cols}, 1fr)`, gridAutoRows: `${Math.floor(layout.tileHeight)}px`, '--tile-h': `${Math.floor(layout.tileHeight)}px` }}>
        {shown.map((p) => <ProblemTile key={p.key} problem={p} now={now} />)}
      </div>
    </main>
  );
}

const ICON: Record<WallProblem['severity'], string> = { bad: '✖', warn: '▲' };

function ProblemTile({ problem, now }: { problem: WallProblem; now: number }) {
  return (
    <article class={`wall-tile ${problem.severity} kind-${problem.kind}`} data-kind={problem.kind} aria-label={`${problem.title} ${problem.status}`}>
      <h2>{problem.title}</h2>
      <p class="wall-status"><span aria-hidden="true">{ICON[problem.severity]}</span> {problem.status}{problem.since !== null ? ` · ${duration(now - problem.since)}` : ''}</p>
      <p class="wall-detail">{problem.detail}</p>
    </article>
  );
}
