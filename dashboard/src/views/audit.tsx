import { useEffect, useMemo, useState } from 'preact/hooks';
import type { AuditEntryView } from '@dvic/protocol/shared';
import { api, call, errorText } from '../api/client.js';
import { dateTime } from '../format.js';
import { useLabDemos } from '../state/use-demos.js';
import { useNodes } from '../state/use-live.js';

/** Who did what, where, when, from which address: the append-only audit trail. */
export function Audit() {
  const nodes = useNodes();
  const demos = useLabDemos();
  /** What an id names, in words: "node lab-pc", "demo kiosk on lab-pc". */
  const names = useMemo(() => {
    const map = new Map<string, string>();
    for (const { node } of nodes.byId.values()) map.set(node.id, `node ${node.name}`);
    for (const d of demos.byId.values()) map.set(d.id, `demo ${d.name} on ${nodes.byId.get(d.node_id)?.node.name ?? 'a node'}`);
    return map;
  }, [nodes.version, demos.version]);
  const [entries, setEntries] = useState<AuditEntryView[]>([]);
  const [q, setQ] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    call(api.GET('/api/v1/audit', { params: { query: { limit: 200, ...(q ? { q } : {}) } } }))
      .then((r) => setEntries(r.entries)).catch((err: unknown) => setError(errorText(err, 'the audit trail cannot be read')));
  }, [q]);
  return (
    <section aria-labelledby="audit-title">
      <div class="toolbar">
        <h1 id="audit-title">Audit</h1>
        <label>Search <input type="search" value={q} onInput={(e) => setQ((e.currentTarget as HTMLInputElement).value)} placeholder="action, target, details" /></label>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      <table class="audit">
        <thead><tr><th>When</th><th>Who</th><th>From</th><th>Action</th><th>Target</th><th>Outcome</th><th>Details</th></tr></thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.id} class={e.outcome}><td>{dateTime(e.at)}</td><td>{e.username ?? '(anonymous)'}</td><td>{e.source_ip}</td><td>{e.action}</td>
              <td title={e.target ?? ''}>{e.target ? names.get(e.target) ?? <code>{e.target}</code> : ''}</td><td>{e.outcome}</td><td><Details details={e.details} /></td></tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** The details of an entry as "key: value" lines, nested values as compact JSON. */
function Details({ details }: { details: AuditEntryView['details'] }) {
  if (!details || typeof details !== 'object') return details ? <span>{String(details)}</span> : null;
  return (
    <dl class="audit-details">
      {Object.entries(details).map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd></div>)}
    </dl>
  );
}
