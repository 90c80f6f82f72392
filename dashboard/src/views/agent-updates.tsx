import { useEffect, useMemo, useState } from 'preact/hooks';
import type { AgentUpdateView } from '@dvic/protocol/shared';
import { api, call } from '../api/client.js';
import { ErrorNotice } from '../components/error-notice.js';
import { dateTime } from '../format.js';
import { isUpdateOver, mergeTrails, stepMarks, updatableNodes } from '../state/agent-updates.js';
import { useShippedAgent } from '../state/use-agent-release.js';
import { useNodes } from '../state/use-live.js';

const POLL_MS = 1000;

/** Agent self-update: pick nodes (the ones behind first), start, and follow each node's steps. */
export function AgentUpdates() {
  const shipped = useShippedAgent();
  const nodes = useNodes();
  const list = useMemo(() => updatableNodes([...nodes.byId.values()].map((e) => e.node), shipped), [nodes.version, shipped]);
  const [selected, setSelected] = useState<Set<string>>(() => new Set(new URLSearchParams(location.search).getAll('node')));
  const [options, setOptions] = useState({ canary: true, force: false });
  const [error, setError] = useState<unknown>(null);
  const [history, setHistory] = useState<AgentUpdateView[]>([]);
  const [shownId, setShownId] = useState<string | null>(null);
  const shown = history.find((u) => u.id === shownId) ?? history[0] ?? null;

  const load = () => call(api.GET('/api/v1/agent-updates')).then((r) => setHistory(r.updates)).catch(setError);
  useEffect(() => { void load(); }, []);
  useEffect(() => {
    if (!shown || isUpdateOver(shown)) return;
    const timer = setTimeout(() => void load(), POLL_MS);
    return () => clearTimeout(timer);
  }, [shown]);

  const start = async (targets: { nodes?: string[]; all?: boolean }) => {
    setError(null);
    try {
      const { id } = await call(api.POST('/api/v1/agent-updates', { body: { targets, canary: options.canary, ...(options.force ? { force: true } : {}) } }));
      setShownId(id);
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const control = (action: 'pause' | 'resume' | 'cancel') => shown && call(api.POST(`/api/v1/agent-updates/{id}/${action}`, { params: { path: { id: shown.id } }, body: {} }))
    .then(() => load()).catch(setError);
  const toggle = (id: string) => setSelected((s) => { const next = new Set(s); if (!next.delete(id)) next.add(id); return next; });

  return (
    <section class="agent-updates" aria-labelledby="updates-title">
      <div class="toolbar">
        <h1 id="updates-title">Agent updates <span class="muted" data-testid="shipped-agent">the server ships agent {shipped ?? '…'}</span></h1>
        <label><input type="checkbox" checked={options.canary} onChange={() => setOptions({ ...options, canary: !options.canary })} /> canary first</label>
        <label><input type="checkbox" checked={options.force} onChange={() => setOptions({ ...options, force: !options.force })} /> allow downgrade</label>
        <button type="button" disabled={selected.size === 0} onClick={() => void start({ nodes: [...selected] })}>Update selected ({selected.size})</button>
        <button type="button" onClick={() => void start({ all: true })}>Update all online</button>
      </div>
      <ErrorNotice error={error} fallback="The update could not be started" />
      <table class="update-nodes" aria-label="Nodes and their agent">
        <thead><tr><th /><th>Node</th><th>Status</th><th>Agent</th></tr></thead>
        <tbody>
          {list.map((n) => (
            <tr key={n.id} data-node={n.name}>
              <td><input type="checkbox" aria-label={`select ${n.name}`} checked={selected.has(n.id)} onChange={() => toggle(n.id)} /></td>
              <td>{n.name}</td><td>{n.status}</td>
              <td>{n.agent_version ?? '–'} {n.behind && <span class="badge warn" data-testid="agent-behind">behind</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {shown && <UpdateProgress update={shown} onControl={control} />}
      {history.length > 1 && <ul class="update-history" aria-label="Earlier updates">
        {history.map((u) => <li key={u.id}><button type="button" class="link" onClick={() => setShownId(u.id)}>{dateTime(u.created_at)} · {u.version} · {u.state} · {u.nodes.length} nodes</button></li>)}
      </ul>}
    </section>
  );
}

/** One update: its state, controls, and each node's steps. */
function UpdateProgress({ update, onControl }: { update: AgentUpdateView; onControl: (a: 'pause' | 'resume' | 'cancel') => void }) {
  const [trails, setTrails] = useState<Map<string, string[]>>(new Map());
  useEffect(() => setTrails((t) => mergeTrails(t, update)), [update]);
  const over = isUpdateOver(update);
  return (
    <section class="update-progress" aria-label="Update progress" data-state={update.state}>
      <h2>Update to {update.version} <span class={`badge ${update.state}`} data-testid="update-state">{update.state}</span></h2>
      {!over && <div class="toolbar">
        {update.state === 'paused'
          ? <button type="button" onClick={() => onControl('resume')}>Resume</button>
          : <button type="button" onClick={() => onControl('pause')}>Pause</button>}
        <button type="button" onClick={() => onControl('cancel')}>Cancel</button>
      </div>}
      <table class="update-steps">
        <thead><tr><th>Node</th><th>From</th><th>Steps</th><th>Result</th></tr></thead>
        <tbody>
          {update.nodes.map((n) => (
            <tr key={n.node_id} data-update-node={n.name} data-state={n.state}>
              <td>{n.name}{n.canary && <span class="muted"> (canary)</span>}</td>
              <td>{n.from_version ?? '–'}</td>
              <td class="steps">{stepMarks(n, trails.get(n.node_id) ?? []).map((s) => <span key={s.step} class={`step ${s.mark}`} data-step={s.step} data-mark={s.mark}>{s.step}</span>)}</td>
              <td data-testid="node-result">{(n.result ?? n.state).replace('_', ' ')}{n.detail ? `: ${n.detail}` : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
