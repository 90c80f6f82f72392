import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { fieldFilters, isLogLevel, LOG_LEVELS, logText, lostLines, type LogRecordView, type LogsRecordsLiveMessage, type LogsSubscribeLiveMessage } from '@dvic/protocol/shared';
import { api, call } from '../api/client.js';
import { live } from '../api/live.js';
import { ErrorNotice } from '../components/error-notice.js';
import { FieldChips } from '../components/field-chips.js';
import { clockTime } from '../format.js';
import { applyLogBatches, mergeRecords, resumeAfter } from '../state/logs-state.js';
import { useLiveMessages, useNodes } from '../state/use-live.js';

const LINE_HEIGHT = 20;
const PAGE = 500;

interface Query {
  /** Node id, name or id prefix: the server resolves it. */
  node: string;
  demo: string;
  level: string;
  q: string;
  until: string;
  /** Structured fields lines must have: field.<name>=<value> in the address. */
  fields: Record<string, string>;
}

const fromLocation = (): Query => {
  const p = new URLSearchParams(location.search);
  return { node: p.get('node') ?? '', demo: p.get('demo') ?? '', level: p.get('level') ?? '', q: p.get('q') ?? '', until: '', fields: fieldFilters(Object.fromEntries(p)) };
};

/** The filters both the search and the live tail take. */
function filters({ node, demo, level, q, fields }: Query): LogsSubscribeLiveMessage['data'] {
  return { ...(node ? { node } : {}), ...(demo ? { demo } : {}), ...(isLogLevel(level) ? { level } : {}), ...(q ? { q } : {}), ...(Object.keys(fields).length ? { fields } : {}) };
}

/** The REST query of some filters: fields go as field.<name>=<value>. */
function restQuery({ fields, ...rest }: LogsSubscribeLiveMessage['data']): Omit<LogsSubscribeLiveMessage['data'], 'fields'> {
  const query: Omit<LogsSubscribeLiveMessage['data'], 'fields'> & Record<string, unknown> = { ...rest };
  for (const [name, value] of Object.entries(fields ?? {})) query[`field.${name}`] = value;
  return query;
}

function fetchPage(query: Query, cursor?: string) {
  const until = query.until ? { until: String(new Date(query.until).getTime()) } : {};
  return call(api.GET('/api/v1/logs', { params: { query: { ...restQuery(filters(query)), ...until, limit: PAGE, ...(cursor ? { cursor } : {}) } } }));
}

/** Each logs.subscribe of this page gets its own id: batches of a replaced one are told apart. */
let subscriptions = 0;

/**
 * Search, then follow: the newest page of matching lines, then the live tail from the last id
 * shown (after a reconnection, from the last id received), merged by id: each line once, in order.
 */
export function Logs() {
  const nodes = useNodes();
  const [query, setQuery] = useState<Query>(fromLocation);
  const shown = useRef<LogRecordView[]>([]);
  const [lines, setLines] = useState<LogRecordView[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [follow, setFollow] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const subscription = useRef('');
  const names = useMemo(() => new Map([...nodes.byId.values()].map((e) => [e.node.id, e.node.name])), [nodes.version]);
  const following = follow && !query.until;
  const show = (next: LogRecordView[]) => {
    shown.current = next;
    setLines(next);
  };

  useEffect(() => {
    const id = `logs-${++subscriptions}`;
    subscription.current = id;
    let replaced = false;
    show([]);
    setError(null);
    fetchPage(query).then((page) => {
      if (replaced) return;
      show(mergeRecords([], page.records));
      setCursor(page.next_cursor);
      if (following) live.subscribe('logs', () => ({ type: 'logs.subscribe', id, data: { ...filters(query), after_id: resumeAfter(shown.current) } }));
    }).catch((err: unknown) => { if (!replaced) setError(err); });
    return () => {
      replaced = true;
      live.subscribe('logs', null);
      live.send({ type: 'logs.unsubscribe', data: {} });
    };
  }, [JSON.stringify(query), following]);

  useLiveMessages(['logs.records'], useCallback((messages: LogsRecordsLiveMessage[]) => {
    const next = applyLogBatches(shown.current, subscription.current, messages);
    if (next !== shown.current) show(next);
  }, []));

  const older = async () => {
    try {
      const page = await fetchPage(query, cursor ?? undefined);
      show(mergeRecords(shown.current, page.records, Number.MAX_SAFE_INTEGER));
      setCursor(page.next_cursor);
    } catch (err) {
      setError(err);
    }
  };

  const submit = (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const field = (name: string) => String(f.get(name) ?? '');
    setQuery({ node: field('node'), demo: field('demo'), level: field('level'), q: field('q'), until: field('until'), fields: query.fields });
  };
  const setFields = (fields: Record<string, string>) => setQuery({ ...query, fields });
  const pickField = useCallback((name: string, value: string) => setQuery((q) => ({ ...q, fields: { ...q.fields, [name]: value } })), []);

  return (
    <section class="logs" aria-labelledby="logs-title">
      {/* Uncontrolled fields (live updates re-render this view); a new query remounts them. */}
      <form class="toolbar" onSubmit={submit} key={JSON.stringify(query)}>
        <h1 id="logs-title">Logs</h1>
        <label>Node <select name="node">
          <option value="">all</option>
          {[...nodes.byId.values()].sort((a, b) => a.node.name.localeCompare(b.node.name)).map(({ node }) => (
            <option key={node.id} value={node.id} selected={node.id === query.node || node.name === query.node}>{node.name}</option>
          ))}
        </select></label>
        <label>Demo <input name="demo" defaultValue={query.demo} placeholder="any" /></label>
        <label>Level ≥ <select name="level"><option value="">any</option>{LOG_LEVELS.map((l) => <option key={l} selected={l === query.level}>{l}</option>)}</select></label>
        <label>Text <input name="q" type="search" defaultValue={query.q} placeholder="words, &quot;a phrase&quot;" /></label>
        <label>Jump to <input name="until" type="datetime-local" step="1" defaultValue={query.until} /></label>
        <button type="submit" class="primary">Search</button>
        {Object.entries(query.fields).map(([k, v]) => (
          <button type="button" key={k} class="chip" data-testid="field-filter" title="Remove this filter"
            onClick={() => setFields(Object.fromEntries(Object.entries(query.fields).filter(([name]) => name !== k)))}>field.{k}={v} ✕</button>
        ))}
        <label class="check"><input type="checkbox" checked={following} disabled={Boolean(query.until)} onChange={(e) => setFollow((e.currentTarget as HTMLInputElement).checked)} /> Follow</label>
      </form>
      <ErrorNotice error={error} fallback="search failed" />
      <LogLines lines={lines} names={names} follow={following} onOlder={cursor ? older : null} onPick={pickField} />
    </section>
  );
}

/** Virtualised lines; while following, stays at the bottom unless the user scrolled up. */
function LogLines({ lines, names, follow, onOlder, onPick }: {
  lines: LogRecordView[]; names: Map<string, string>; follow: boolean; onOlder: (() => void) | null; onPick: (name: string, value: string) => void;
}) {
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
          {lines.slice(first, last).map((r) => <LogLine key={r.id} record={r} names={names} onPick={onPick} />)}
        </div>
      </div>
    </div>
  );
}

/** One line; a marker for lines lost before the agent read them stands out as a warning. */
function LogLine({ record: r, names, onPick }: { record: LogRecordView; names: Map<string, string>; onPick: (name: string, value: string) => void }) {
  const lost = lostLines(r) !== null;
  return (
    <div class={`log-line level-${r.level}${lost ? ' lost' : ''}`} data-level={r.level} data-id={r.id}>
      <time dateTime={new Date(r.ts).toISOString()}>{clockTime(r.ts)}</time>
      <span class="where">{names.get(r.node_id) ?? r.node_id.slice(0, 8)}/{r.demo ?? 'system'}</span>
      <span class="level">{r.level}</span>
      <span class="message">{logText(r)}<FieldChips fields={r.fields} onPick={onPick} /></span>
    </div>
  );
}
