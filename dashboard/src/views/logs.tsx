import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, get } from '../api/client.js';
import { live } from '../api/live.js';
import { clockTime } from '../format.js';
import { useLiveMessages, useNodes } from '../state/use-live.js';

const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
/** Lines kept on screen while following: older ones scroll away (the server keeps them all). */
const MAX_LINES = 5000;
const LINE_HEIGHT = 20;

interface Record_ {
  id: number;
  node_id: string;
  demo: string | null;
  ts: number;
  level: string;
  message: string;
}

interface Query {
  node: string;
  demo: string;
  level: string;
  q: string;
  until: string;
}

const fromLocation = (): Query => {
  const p = new URLSearchParams(location.search);
  return { node: p.get('node') ?? '', demo: p.get('demo') ?? '', level: p.get('level') ?? '', q: p.get('q') ?? '', until: '' };
};

export function Logs() {
  const nodes = useNodes();
  const [query, setQuery] = useState<Query>(fromLocation);
  const [lines, setLines] = useState<Record_[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [follow, setFollow] = useState(true);
  const [error, setError] = useState('');
  const [dropped, setDropped] = useState(0);
  const names = useMemo(() => new Map([...nodes.byId.values()].map((e) => [e.node.id, e.node.name])), [nodes.version]);

  const params = (extra: Record<string, string> = {}) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...query, ...extra })) if (v) p.set(k, k === 'until' ? String(new Date(v).getTime()) : v);
    return p;
  };
  const search = async (older?: string) => {
    setError('');
    try {
      const page = await get(`/api/v1/logs?${params({ limit: '500', ...(older ? { cursor: older } : {}) })}`);
      const got = [...page.records].reverse() as Record_[];
      setLines((current) => (older ? [...got, ...current] : got));
      setCursor(page.next_cursor);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'search failed');
    }
  };
  useEffect(() => {
    void search();
    const { node, demo, level, q } = query;
    const data = Object.fromEntries(Object.entries({ node, demo, level, q }).filter(([, v]) => v));
    live.subscribe('logs', follow && !query.until ? { type: 'logs.subscribe', data } : null);
    if (!follow || query.until) live.send({ type: 'logs.unsubscribe', data: {} });
    return () => {
      live.subscribe('logs', null);
      live.send({ type: 'logs.unsubscribe', data: {} });
    };
  }, [JSON.stringify(query), follow]);

  useLiveMessages(['logs.records'], useCallback((messages: any[]) => {
    const incoming = messages.flatMap((m) => m.data.records) as Record_[];
    const lost = messages.reduce((n, m) => n + (m.data.dropped ?? 0), 0);
    if (lost) setDropped((d) => d + lost);
    setLines((current) => {
      const next = current.concat(incoming);
      return next.length > MAX_LINES ? next.slice(next.length - MAX_LINES) : next;
    });
  }, []));

  const submit = (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    setQuery({ node: f.get('node') as string, demo: f.get('demo') as string, level: f.get('level') as string, q: f.get('q') as string, until: f.get('until') as string });
  };

  return (
    <section class="logs" aria-labelledby="logs-title">
      {/* Uncontrolled fields (live updates re-render this view); a new query remounts them. */}
      <form class="toolbar" onSubmit={submit} key={JSON.stringify(query)}>
        <h1 id="logs-title">Logs</h1>
        <label>Node <select name="node">
          <option value="">all</option>
          {[...nodes.byId.values()].sort((a, b) => a.node.name.localeCompare(b.node.name)).map(({ node }) => <option key={node.id} value={node.id} selected={node.id === query.node}>{node.name}</option>)}
        </select></label>
        <label>Demo <input name="demo" defaultValue={query.demo} placeholder="any" /></label>
        <label>Level ≥ <select name="level"><option value="">any</option>{LEVELS.map((l) => <option key={l} selected={l === query.level}>{l}</option>)}</select></label>
        <label>Text <input name="q" type="search" defaultValue={query.q} placeholder="full-text search" /></label>
        <label>Jump to <input name="until" type="datetime-local" step="1" defaultValue={query.until} /></label>
        <button type="submit" class="primary">Search</button>
        <label class="check"><input type="checkbox" checked={follow && !query.until} disabled={Boolean(query.until)} onChange={(e) => setFollow((e.currentTarget as HTMLInputElement).checked)} /> Follow</label>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {dropped > 0 && <p class="banner warn" role="status">{dropped} lines were too many to show live (all are stored: search to see them).</p>}
      <LogLines lines={lines} names={names} follow={follow && !query.until} onOlder={cursor ? () => search(cursor) : null} />
    </section>
  );
}

/** Virtualised lines; while following, stays at the bottom unless the user scrolled up. */
function LogLines({ lines, names, follow, onOlder }: { lines: Record_[]; names: Map<string, string>; follow: boolean; onOlder: (() => void) | null }) {
  const box = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState(0);
  const [height, setHeight] = useState(600);
  const pinned = useRef(true);
  useEffect(() => {
    const el = box.current!;
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  useEffect(() => {
    const el = box.current!;
    if (follow && pinned.current) el.scrollTop = el.scrollHeight;
  }, [lines, follow]);
  const first = Math.max(0, Math.floor(scroll / LINE_HEIGHT) - 20);
  const last = Math.min(lines.length, Math.ceil((scroll + height) / LINE_HEIGHT) + 20);
  return (
    <div ref={box} class="log-lines" role="log" aria-live="off" aria-label="Log lines" onScroll={(e) => {
      const el = e.currentTarget as HTMLDivElement;
      pinned.current = el.scrollTop + el.clientHeight >= el.scrollHeight - LINE_HEIGHT * 2;
      setScroll(el.scrollTop);
    }}>
      {onOlder && <button type="button" class="older" onClick={onOlder}>Load older lines</button>}
      {lines.length === 0 && <p class="muted empty">No log line matches.</p>}
      <div style={{ height: `${lines.length * LINE_HEIGHT}px`, position: 'relative' }}>
        <div style={{ transform: `translateY(${first * LINE_HEIGHT}px)` }}>
          {lines.slice(first, last).map((r) => (
            <div key={r.id} class={`log-line level-${r.level}`} data-level={r.level}>
              <time dateTime={new Date(r.ts).toISOString()}>{clockTime(r.ts)}</time>
              <span class="where">{names.get(r.node_id) ?? r.node_id.slice(0, 8)}/{r.demo ?? 'system'}</span>
              <span class="level">{r.level}</span>
              <span class="message">{r.message}</span>
            </div>
          ))}
        </div>
      </div>
    </div>
  );
}
