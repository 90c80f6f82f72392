import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { duration, isFinalStatus, type CommandOutputLiveMessage, type CommandUpdatedLiveMessage } from '@dvic/protocol/shared';
import type { paths } from '@dvic/client';
import { api, call } from '../api/client.js';
import { live } from '../api/live.js';
import { ErrorNotice } from '../components/error-notice.js';
import { dateTime } from '../format.js';
import { applyCommandMessages, isFinal, mergeFetched, type Command } from '../state/commands-state.js';
import { useLiveMessages, useNodes } from '../state/use-live.js';

type Targets = paths['/api/v1/exec']['post']['requestBody']['content']['application/json']['targets'];

/** "*" for every node, "key=value" for a label, otherwise node names, ids or id prefixes. */
function parseTargets(text: string): Targets {
  if (text === '*') return { all: true };
  if (text.includes('=')) return { label: text };
  return { nodes: text.split(/[\s,]+/).filter(Boolean) };
}

const fetchCommand = (id: string) => call(api.GET('/api/v1/commands/{id}', { params: { path: { id } } })).then((r) => r.command);

/** Run a command on several nodes and watch every output side by side (like Salt's cmd.run). */
export function Commands() {
  const nodes = useNodes();
  const names = useMemo(() => new Map([...nodes.byId.values()].map((e) => [e.node.id, e.node.name])), [nodes.version]);
  const [running, setRunning] = useState<Command[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [history, setHistory] = useState<Command[]>([]);
  const [search, setSearch] = useState('');
  const preselected = new URLSearchParams(location.search).get('node') ?? '';
  /** The commands shown side by side (the live callback outlives renders). */
  const followed = useRef(new Set<string>());

  const loadHistory = useCallback(() => {
    call(api.GET('/api/v1/commands', { params: { query: { limit: 100, ...(search ? { q: search } : {}) } } })).then((r) => setHistory(r.commands)).catch(() => undefined);
  }, [search]);
  useEffect(loadHistory, [loadHistory]);

  useLiveMessages(['command.output', 'command.updated'], useCallback((messages: (CommandOutputLiveMessage | CommandUpdatedLiveMessage)[]) => {
    setRunning((current) => applyCommandMessages(current, messages));
    // Output that reached the server between the start and the subscription is in neither the
    // first fetch nor the stream: an ended command is fetched once more, for all of it.
    for (const m of messages) {
      if (m.type !== 'command.updated' || !isFinalStatus(m.data.command.status) || !followed.current.has(m.data.command.id)) continue;
      void fetchCommand(m.data.command.id).then((full) => setRunning((current) => current.map((c) => (c.id === full.id ? mergeFetched(c, full) : c)))).catch(() => undefined);
    }
  }, []));

  const run = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    setError(null);
    try {
      const body = { targets: parseTargets(String(f.get('targets')).trim()), command: String(f.get('command')), timeout_s: Number(f.get('timeout')) || 60 };
      const { commands } = await call(api.POST('/api/v1/exec', { body }));
      const [first, ...rest] = commands.map((c) => c.id);
      if (first) live.send({ type: 'commands.subscribe', data: { ids: [first, ...rest] } });
      followed.current = new Set(commands.map((c) => c.id));
      setRunning(commands);
      // Output that came before the subscription: fetch it once, the stream goes on from there.
      const full = await Promise.all(commands.map((c) => fetchCommand(c.id)));
      setRunning((current) => current.map((c) => mergeFetched(c, full.find((x) => x.id === c.id)!)));
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => { if (running.length && running.every(isFinal)) loadHistory(); }, [running]);

  return (
    <section class="commands" aria-labelledby="commands-title">
      <form class="toolbar" onSubmit={run}>
        <h1 id="commands-title">Commands</h1>
        <label>On <input name="targets" required defaultValue={names.get(preselected) ?? ''} key={names.get(preselected) ?? ''} placeholder="pi-1, pi-2 · room=hall · *" title="node names, ids or id starts; key=value for a label; or * for every online node" /></label>
        <label class="grow">Command <input name="command" required placeholder="systemctl restart demo" /></label>
        <label>Timeout (s) <input name="timeout" type="number" min={1} defaultValue="60" /></label>
        <button type="submit" class="primary">Run</button>
      </form>
      <ErrorNotice error={error} fallback="could not start the command" />
      {running.length > 0 && (
        <div class="fanout">
          {running.map((c) => (
            <article key={c.id} class={`pane ${c.status}`} aria-label={`Output on ${names.get(c.node_id) ?? c.node_id}`}>
              <header>
                <strong>{names.get(c.node_id) ?? c.node_id}</strong>
                <span class={`cmd-status ${c.status}`}>{c.status}{c.exit_code != null ? ` (${c.exit_code})` : ''}{c.signal ? ` ${c.signal}` : ''}</span>
                {!isFinal(c) && <button type="button" onClick={() => call(api.POST('/api/v1/commands/{id}/cancel', { params: { path: { id: c.id } }, body: {} })).catch(() => undefined)}>Cancel</button>}
              </header>
              <pre>{c.stdout}{c.stderr && <span class="stderr">{c.stderr}</span>}{c.error && <span class="stderr">{c.error}</span>}{c.truncated && '\n… output truncated'}</pre>
            </article>
          ))}
        </div>
      )}
      <div class="toolbar">
        <h2>History</h2>
        <label>Search <input type="search" value={search} onInput={(e) => setSearch((e.currentTarget as HTMLInputElement).value)} placeholder="text in the command" /></label>
      </div>
      <table class="history">
        <thead><tr><th>When</th><th>Who</th><th>Node</th><th>Command</th><th>Result</th><th>Took</th></tr></thead>
        <tbody>
          {history.map((c) => (
            <tr key={c.id}><td>{dateTime(c.created_at)}</td><td>{c.user}</td><td>{names.get(c.node_id) ?? c.node_id.slice(0, 8)}</td><td><code>{c.command}</code></td>
              <td class={`cmd-status ${c.status}`}>{c.status}{c.exit_code != null ? ` (${c.exit_code})` : ''}</td><td>{c.duration_ms != null ? duration(c.duration_ms) : '–'}</td></tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
