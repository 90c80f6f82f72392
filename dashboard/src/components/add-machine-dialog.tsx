import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { EnrollmentView } from '@dvic/protocol/shared';
import { api, call } from '../api/client.js';
import { navigate } from '../router.js';
import { newerEnrollment, parseLabelText, stepLines } from '../state/enrollment-state.js';
import { useLiveMessages, useNodes } from '../state/use-live.js';

/**
 * "Add machine": address, user and password of a machine, and the node that reaches it; then the
 * host key to confirm and every step live, until the node is online. Also the install link, for a
 * machine someone sits at. The password leaves the form once, in the POST; it is never shown again.
 */
export function AddMachineDialog({ onClose }: { onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [enrollment, setEnrollment] = useState<EnrollmentView | null>(null);
  const [error, setError] = useState('');
  useEffect(() => { dialog.current?.showModal(); }, []);
  const onLive = useCallback((messages: { data: { enrollment: EnrollmentView } }[]) => {
    setEnrollment((current) => {
      let next = current;
      for (const m of messages) if (current && m.data.enrollment.id === current.id) next = newerEnrollment(next, m.data.enrollment);
      return next;
    });
  }, []);
  useLiveMessages(['enrollment.updated'], onLive);

  return (
    <dialog ref={dialog} class="add-machine" aria-labelledby="add-machine-title" onClose={onClose}>
      <h2 id="add-machine-title">Add machine</h2>
      {enrollment ? <Progress enrollment={enrollment} onChange={setEnrollment} onError={setError} /> : <MachineForm onStarted={setEnrollment} onError={setError} />}
      {error && <p class="error" role="alert">{error}</p>}
      {!enrollment && <InstallLink onError={setError} />}
      <p class="actions"><button type="button" onClick={() => dialog.current?.close()}>Close</button></p>
    </dialog>
  );
}

function MachineForm({ onStarted, onError }: { onStarted: (e: EnrollmentView) => void; onError: (message: string) => void }) {
  const state = useNodes();
  const [via, setVia] = useState('');
  // The nodes online, and the one chosen even once it is not (the server then says it is offline):
  // an option removed under the user would silently send the machine's password through another.
  const sources = [...state.byId.values()].map((e) => e.node).filter((n) => n.status === 'online' || n.id === via).sort((a, b) => a.name.localeCompare(b.name));
  const chosen = via || sources[0]?.id || 'server';
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const labels = parseLabelText(String(form.get('labels') ?? ''));
    if (!labels) return onError('Labels are key=value pairs separated by commas.');
    setBusy(true);
    onError('');
    try {
      const { enrollment } = await call(api.POST('/api/v1/enrollments', {
        body: {
          name: String(form.get('name')), host: String(form.get('host')), port: Number(form.get('port') || 22), username: String(form.get('username')),
          password: String(form.get('password')), via: String(form.get('via')), labels,
        },
      }));
      onStarted(enrollment);
    } catch (err) {
      onError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} class="add-machine-form">
      <label>Name <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]*" maxLength={64} placeholder="pi-hall-3" /></label>
      <label>Address <input name="host" required pattern="[A-Za-z0-9._:\-]+" placeholder="192.168.1.42" /></label>
      <label>SSH port <input name="port" type="number" min={1} max={65535} defaultValue="22" /></label>
      <label>User <input name="username" required autoComplete="off" placeholder="pi" /></label>
      <label>Password <input name="password" type="password" required autoComplete="new-password" /></label>
      <label>Reached through <select name="via" value={chosen} onChange={(e) => setVia((e.currentTarget as HTMLSelectElement).value)}>
        {sources.map((n) => <option key={n.id} value={n.id}>{n.status === 'online' ? n.name : `${n.name} (${n.status})`}</option>)}
        <option value="server">the server (direct)</option>
      </select></label>
      <label>Labels <input name="labels" placeholder="room=hall, rack=2" /></label>
      <button type="submit" disabled={busy}>Add</button>
    </form>
  );
}

function Progress({ enrollment, onChange, onError }: { enrollment: EnrollmentView; onChange: (e: EnrollmentView) => void; onError: (m: string) => void }) {
  // A fetch now and then, in case a live update was missed (reconnects).
  useEffect(() => {
    if (enrollment.state !== 'running') return;
    const timer = setInterval(() => {
      call(api.GET('/api/v1/enrollments/{id}', { params: { path: { id: enrollment.id } } })).then((r) => onChange(newerEnrollment(enrollment, r.enrollment))).catch(() => undefined);
    }, 3000);
    return () => clearInterval(timer);
  }, [enrollment.id, enrollment.state, enrollment.updated_at]);
  const accept = () => call(api.POST('/api/v1/enrollments/{id}/accept', { params: { path: { id: enrollment.id } }, body: {} }))
    .then((r) => onChange(newerEnrollment(enrollment, r.enrollment))).catch((err: Error) => onError(err.message));
  return (
    <div class="enrollment" data-state={enrollment.state}>
      <p>{enrollment.username}@{enrollment.host}:{enrollment.port} as <strong>{enrollment.name}</strong></p>
      {enrollment.state === 'awaiting_host_key' && (
        <div class="host-key" role="group" aria-label="Host key">
          <p>The machine's SSH host key is <code data-testid="host-key">{enrollment.host_key_fingerprint}</code>. Check it (on the machine: <code>ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub</code>) before trusting it.</p>
          <button type="button" onClick={accept}>Trust this key and continue</button>
        </div>
      )}
      <ol class="steps" aria-label="Steps">
        {stepLines(enrollment).map((s) => (
          <li key={s.name} data-step={s.name} data-status={s.status}><span class="step-status">{s.status}</span> {s.label} <span class="muted">{s.duration}</span></li>
        ))}
      </ol>
      {enrollment.state === 'failed' && enrollment.error && (
        <div class="error" role="alert">
          <p>Failed at {enrollment.error.step}: {enrollment.error.message}</p>
          {enrollment.error.output && <pre>{enrollment.error.output}</pre>}
        </div>
      )}
      {enrollment.state === 'failed' && <RetryForm enrollment={enrollment} onChange={onChange} onError={onError} />}
      {enrollment.state === 'succeeded' && enrollment.node_id && (
        <p class="ok" role="status">{enrollment.name} is online. <a href={`/nodes/${enrollment.node_id}`} onClick={(e) => { e.preventDefault(); navigate(`/nodes/${enrollment.node_id}`); }}>Open it</a></p>
      )}
    </div>
  );
}

/** The password is not kept after a failure: a retry asks for it again. */
function RetryForm({ enrollment, onChange, onError }: { enrollment: EnrollmentView; onChange: (e: EnrollmentView) => void; onError: (m: string) => void }) {
  const retry = (event: Event) => {
    event.preventDefault();
    const password = String(new FormData(event.currentTarget as HTMLFormElement).get('password'));
    onError('');
    call(api.POST('/api/v1/enrollments/{id}/retry', { params: { path: { id: enrollment.id } }, body: { password } }))
      .then((r) => onChange(newerEnrollment(enrollment, r.enrollment))).catch((err: Error) => onError(err.message));
  };
  return (
    <form class="retry" onSubmit={retry}>
      <label>Password <input name="password" type="password" required autoComplete="new-password" /></label>
      <button type="submit">Retry</button>
    </form>
  );
}

function InstallLink({ onError }: { onError: (message: string) => void }) {
  const [link, setLink] = useState<{ command: string; wget_command: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const create = () => call(api.POST('/api/v1/enrollment-tokens', { body: { max_uses: 1 } })).then(setLink).catch((err: Error) => onError(err.message));
  const copy = () => navigator.clipboard.writeText(link!.command).then(() => setCopied(true)).catch(() => onError('Copying was refused by the browser: select the command instead.'));
  return (
    <details class="install-link">
      <summary>Or install it from the machine itself (install link)</summary>
      {link ? (
        <div>
          <p>Run as root on the machine (valid one day, for one machine):</p>
          <pre data-testid="install-command">{link.command}</pre>
          <button type="button" onClick={copy}>{copied ? 'Copied' : 'Copy'}</button>
          <p class="muted">Without curl: <code>{link.wget_command}</code></p>
        </div>
      ) : <button type="button" onClick={create}>Create an install link</button>}
    </details>
  );
}
