import { useEffect, useState } from 'preact/hooks';
import { uploadArtifact, type Schemas } from '@dvic/client';
import { bytes, type DeploymentView } from '@dvic/protocol/shared';
import { api, call, errorText } from '../api/client.js';
import { dateTime } from '../format.js';
import { deploymentSummary, isDeploymentOver, nodePercent } from '../state/deploy-progress.js';

type Artifact = Schemas['Artifact'];
const POLL_MS = 1000;
const field = (form: HTMLFormElement, name: string) => String(new FormData(form).get(name) ?? '').trim();
const byId = (id: string) => ({ params: { path: { id } } });

/** Artifacts (upload, list, delete) and deployments to nodes with each node's progress. */
export function Deploy() {
  const [artifacts, setArtifacts] = useState<Artifact[]>([]);
  const [deployments, setDeployments] = useState<DeploymentView[]>([]);
  const [shown, setShown] = useState<string | null>(null);
  const [error, setError] = useState('');
  const reload = async () => {
    const [a, d] = await Promise.all([call(api.GET('/api/v1/artifacts')), call(api.GET('/api/v1/deployments'))]);
    setArtifacts(a.artifacts);
    setDeployments(d.deployments);
  };
  useEffect(() => { reload().catch((e: unknown) => setError(errorText(e, 'cannot load artifacts'))); }, []);
  const attempt = (what: string, work: () => Promise<unknown>) => {
    setError('');
    work().then(reload).catch((e: unknown) => setError(errorText(e, `${what} failed`)));
  };

  return (
    <section aria-labelledby="deploy-title" class="deploy">
      <div class="toolbar"><h1 id="deploy-title">Deploy</h1></div>
      {error && <p class="error" role="alert">{error}</p>}
      <h2>Artifacts</h2>
      <UploadForm onUpload={(form) => attempt('upload', async () => {
        const file = (form.elements.namedItem('file') as HTMLInputElement).files?.[0];
        if (!file) throw new Error('choose a file');
        await uploadArtifact({ baseUrl: location.origin }, { name: field(form, 'name') || file.name, version: field(form, 'version') }, file);
        form.reset();
      })} />
      <ArtifactTable artifacts={artifacts} onDelete={(a) => confirm(`Delete ${a.name} ${a.version}?`)
        && attempt('delete', () => call(api.DELETE('/api/v1/artifacts/{id}', { ...byId(a.id), body: {} })))} />
      <h2>New deployment</h2>
      <DeployForm artifacts={artifacts} onDeploy={(body) => attempt('deploy', async () => setShown((await call(api.POST('/api/v1/deployments', { body }))).id))} />
      {shown && <DeploymentProgress id={shown} onChange={reload} />}
      <h2>Recent deployments</h2>
      <ul class="deployments">
        {deployments.map((d) => (
          <li key={d.id}>
            <button type="button" class="link" onClick={() => setShown(d.id)}>{d.artifact.name} {d.artifact.version} → {d.path}</button>
            {' '}<span class={`deploy-state ${d.state}`}>{d.state}</span> <span class="muted">{deploymentSummary(d)}, {dateTime(d.created_at)} by {d.created_by}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function UploadForm({ onUpload }: { onUpload: (form: HTMLFormElement) => void }) {
  return (
    <form class="toolbar" aria-label="Upload an artifact" onSubmit={(e) => { e.preventDefault(); onUpload(e.currentTarget); }}>
      <label>File <input type="file" name="file" required /></label>
      <label>Name <input name="name" placeholder="from the file" pattern="[A-Za-z0-9][A-Za-z0-9._\-]*" /></label>
      <label>Version <input name="version" required pattern="[A-Za-z0-9][A-Za-z0-9._+\-]*" /></label>
      <button type="submit">Upload</button>
    </form>
  );
}

function ArtifactTable({ artifacts, onDelete }: { artifacts: Artifact[]; onDelete: (a: Artifact) => void }) {
  if (artifacts.length === 0) return <p class="muted">No artifacts yet.</p>;
  return (
    <table class="artifacts-table">
      <thead><tr><th>Name</th><th>Version</th><th>Size</th><th>Format</th><th>SHA-256</th><th>Uploaded</th><th /></tr></thead>
      <tbody>
        {artifacts.map((a) => (
          <tr key={a.id} data-artifact={`${a.name}@${a.version}`}>
            <td>{a.name}</td><td>{a.version}</td><td>{bytes(a.size)}</td><td>{a.format}</td>
            <td><code title={a.sha256}>{a.sha256.slice(0, 16)}…</code></td><td>{dateTime(a.created_at)} by {a.created_by}</td>
            <td><button type="button" onClick={() => onDelete(a)}>Delete</button></td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

type DeployBody = { artifact: string; targets: { nodes?: string[]; label?: string; all?: boolean }; path: string; extract: boolean; mode?: string; owner?: string; pre_command?: string; post_command?: string };

function DeployForm({ artifacts, onDeploy }: { artifacts: Artifact[]; onDeploy: (body: DeployBody) => void }) {
  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const to = field(form, 'targets');
    const targets = to === '*' ? { all: true } : to.includes('=') ? { label: to } : { nodes: to.split(/[\s,]+/).filter(Boolean) };
    const optional = Object.fromEntries(['mode', 'owner', 'pre_command', 'post_command'].map((k) => [k, field(form, k)]).filter(([, v]) => v));
    onDeploy({ artifact: field(form, 'artifact'), targets, path: field(form, 'path'), extract: new FormData(form).get('extract') === 'on', ...optional });
  };
  return (
    <form class="deploy-form" aria-label="Deploy an artifact" onSubmit={submit}>
      <label>Artifact <select name="artifact" required>{artifacts.map((a) => <option key={a.id} value={a.id}>{a.name} {a.version} ({a.format})</option>)}</select></label>
      <label>Targets <input name="targets" required placeholder="node names, key=value, or * for all" /></label>
      <label>Path <input name="path" required placeholder="/opt/dvic-demos/my-demo" /></label>
      <label><input type="checkbox" name="extract" /> Extract (.tar.gz, .zip)</label>
      <label>Mode <input name="mode" placeholder="0755" pattern="[0-7]{3,4}" size={5} /></label>
      <label>Owner <input name="owner" placeholder="user:group" /></label>
      <label>Before <input name="pre_command" placeholder="systemctl stop my-demo" /></label>
      <label>After <input name="post_command" placeholder="systemctl restart my-demo" /></label>
      <button type="submit">Deploy</button>
    </form>
  );
}

/** One deployment, polled until it ends: a progress bar, step and message per node. */
function DeploymentProgress({ id, onChange }: { id: string; onChange: () => Promise<void> }) {
  const [d, setD] = useState<DeploymentView | null>(null);
  const [error, setError] = useState('');
  const [round, setRound] = useState(0); // a rollback or cancel starts polling again
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const poll = async () => {
      try {
        const { deployment } = await call(api.GET('/api/v1/deployments/{id}', byId(id)));
        if (stopped) return;
        setD(deployment);
        if (isDeploymentOver(deployment)) return void onChange();
      } catch (e) {
        setError(errorText(e, 'cannot load the deployment'));
      }
      timer = setTimeout(() => void poll(), POLL_MS);
    };
    void poll();
    return () => { stopped = true; clearTimeout(timer); };
  }, [id, round]);
  const act = (action: 'rollback' | 'cancel') => {
    setError('');
    call(api.POST(`/api/v1/deployments/{id}/${action}`, { ...byId(id), body: {} })).then(({ deployment }) => { setD(deployment); setRound((r) => r + 1); })
      .catch((e: unknown) => setError(errorText(e, `${action} failed`)));
  };
  if (!d) return <p class="muted">Loading…</p>;
  return (
    <div class="deployment" data-deployment={d.id} aria-label="Deployment progress">
      <div class="toolbar">
        <h3>{d.artifact.name} {d.artifact.version} → {d.path}</h3>
        <span class={`deploy-state ${d.state}`}>{d.state}</span>
        <span class="muted">{deploymentSummary(d)}</span>
        {!isDeploymentOver(d) && <button type="button" onClick={() => act('cancel')}>Cancel</button>}
        {isDeploymentOver(d) && d.nodes.some((n) => n.result === 'done') && <button type="button" onClick={() => act('rollback')}>Roll back</button>}
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      <table class="deploy-nodes">
        <thead><tr><th>Node</th><th>Result</th><th>Step</th><th>Progress</th><th>Message</th></tr></thead>
        <tbody>
          {d.nodes.map((n) => (
            <tr key={n.node_id} data-node={n.node_name} class={`deploy-node ${n.result}`}>
              <td>{n.node_name}</td>
              <td class="result">{n.result}</td>
              <td class="step">{n.step ?? '–'}</td>
              <td><progress max={100} value={nodePercent(n, d.artifact.size)} /> {bytes(n.bytes_done)}{n.resumed_from > 0 ? ` (resumed at ${bytes(n.resumed_from)})` : ''}</td>
              <td class="message">{n.message ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
