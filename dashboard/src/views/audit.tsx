import { useEffect, useState } from 'preact/hooks';
import type { AuditEntryView } from '@dvic/protocol/shared';
import { api, call, errorText } from '../api/client.js';
import { dateTime } from '../format.js';

/** Who did what, where, when, from which address: the append-only audit trail. */
export function Audit() {
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
              <td><code>{e.target ?? ''}</code></td><td>{e.outcome}</td><td><code>{e.details ? JSON.stringify(e.details) : ''}</code></td></tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
