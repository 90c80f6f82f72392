import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Alert, AlertRule, Channel } from '@dvic/protocol/shared';
import { duration } from '@dvic/protocol/shared';
import { api, call, errorText } from '../api/client.js';
import { dateTime } from '../format.js';
import { onLink } from '../router.js';
import { alertHistory, firingAlerts } from '../state/alerts-store.js';
import { useAlerts } from '../state/use-alerts.js';
import { useNow } from './overview.js';

const KINDS: AlertRule['kind'][] = ['node_offline', 'demo_crashed', 'demo_down', 'demo_silent', 'log_errors', 'device_down', 'device_late', 'disk_used', 'memory_available', 'temperature', 'agent_version'];
const WITH_THRESHOLD = new Set<AlertRule['kind']>(['demo_silent', 'log_errors', 'disk_used', 'memory_available', 'temperature']);
const CHANNEL_TYPES: Channel['type'][] = ['webhook', 'discord', 'slack', 'ntfy', 'telegram', 'teams'];

/** Where an alert's subject lives in the dashboard. */
function subjectHref(a: Alert): string | null {
  const s = a.subject;
  return s.type === 'device' && s.device_id ? `/devices/${s.device_id}` : s.node_id ? `/nodes/${s.node_id}` : null;
}

/** /alerts: firing now, the rules (with their own history), the history, and the channels. */
export function Alerts() {
  const state = useAlerts();
  const [rules, setRules] = useState<AlertRule[]>([]);
  const [ruleFilter, setRuleFilter] = useState<string | undefined>(undefined);
  const loadRules = () => void call(api.GET('/api/v1/alert-rules')).then((r) => setRules(r.rules)).catch(() => undefined);
  useEffect(loadRules, []);
  const firing = useMemo(() => firingAlerts(state), [state.version]);
  const history = useMemo(() => alertHistory(state, ruleFilter).slice(0, 100), [state.version, ruleFilter]);
  return (
    <section class="alerts-page" aria-labelledby="alerts-title">
      <h1 id="alerts-title">Alerts <span class="muted" data-testid="firing-count">{firing.length} firing</span></h1>
      <h2>Firing now</h2>
      <AlertTable alerts={firing} label="Firing now" actions />
      <h2>Rules</h2>
      <RulesTable rules={rules} state={firing} onChanged={loadRules} onPick={setRuleFilter} picked={ruleFilter} />
      <h2>History {ruleFilter && <span class="muted">of {rules.find((r) => r.id === ruleFilter)?.name} <button type="button" onClick={() => setRuleFilter(undefined)}>all rules</button></span>}</h2>
      <AlertTable alerts={history} label="History" />
      <h2>Channels</h2>
      <Channels />
    </section>
  );
}

function AlertTable({ alerts, label, actions }: { alerts: Alert[]; label: string; actions?: boolean }) {
  const now = useNow(1000);
  const [error, setError] = useState<string | null>(null);
  const act = (p: Promise<unknown>) => p.then(() => setError(null)).catch((e) => setError(errorText(e, 'could not do that')));
  if (!alerts.length) return <p class="muted empty">{actions ? 'Nothing firing.' : 'No alerts yet.'}</p>;
  return (
    <>
      {error && <p role="alert" class="error">{error}</p>}
      <table class="alerts" aria-label={label}>
        <thead><tr><th>Severity</th><th>Alert</th><th>Where</th><th>Since</th><th>{actions ? 'For' : 'Lasted'}</th><th>Note</th>{actions && <th />}</tr></thead>
        <tbody>
          {alerts.map((a) => {
            const href = subjectHref(a);
            return (
              <tr key={a.id} data-alert={a.summary} class={`severity-${a.severity}`}>
                <td><span class={`severity severity-${a.severity}`}>{a.severity}</span></td>
                <td>{a.summary}{a.last_lines.length > 0 && <pre class="last-lines">{a.last_lines.slice(-3).join('\n')}</pre>}</td>
                <td>{href ? <a href={href} onClick={(e) => onLink(e, href)}>{a.subject.device_name ?? a.subject.node_name}</a> : '–'}</td>
                <td>{dateTime(a.started_at)}</td>
                <td>{duration((a.resolved_at ?? now) - a.started_at)}</td>
                <td data-testid="alert-note">{[a.flapping && 'flapping', a.muted && 'muted', a.acked_by && `acked by ${a.acked_by}`].filter(Boolean).join(', ')}</td>
                {actions && <td class="actions">
                  {a.acked_at === null && <button type="button" onClick={() => act(call(api.POST('/api/v1/alerts/{id}/ack', { params: { path: { id: a.id } }, body: {} })))}>Acknowledge</button>}
                  <button type="button" onClick={() => act(call(api.POST('/api/v1/alerts/{id}/mute', { params: { path: { id: a.id } }, body: { duration_s: 3600 } })))}>Mute 1 h</button>
                </td>}
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}

function RulesTable({ rules, state, onChanged, onPick, picked }: { rules: AlertRule[]; state: Alert[]; onChanged: () => void; onPick: (id: string) => void; picked?: string }) {
  const [editing, setEditing] = useState<string | null>(null);
  return (
    <>
      <table class="rules" aria-label="Rules">
        <thead><tr><th>Rule</th><th>Kind</th><th>Threshold</th><th>For</th><th>Severity</th><th>Repeat</th><th>Firing</th><th /></tr></thead>
        <tbody>
          {rules.map((r) => (
            <tr key={r.id} data-rule={r.name} class={r.enabled ? '' : 'disabled'} aria-selected={picked === r.id}>
              <td><button type="button" class="link" onClick={() => onPick(r.id)}>{r.name}</button>{!r.enabled && <span class="muted"> (off)</span>}</td>
              <td>{r.kind}</td><td>{r.threshold ?? '–'}</td><td>{r.for_s} s</td><td>{r.severity}</td>
              <td>{r.repeat_s === null ? 'never' : duration(r.repeat_s * 1000)}</td>
              <td>{state.filter((a) => a.rule_id === r.id).length}</td>
              <td><button type="button" onClick={() => setEditing(editing === r.id ? null : r.id)}>Edit</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      {editing && <RuleEditor key={editing} rule={rules.find((r) => r.id === editing)} onDone={() => { setEditing(null); onChanged(); }} />}
      <details class="add-rule"><summary>Add a rule</summary><RuleEditor onDone={onChanged} /></details>
    </>
  );
}

/** Edits a rule (or adds one): threshold, for, severity, repeat, on/off. */
function RuleEditor({ rule, onDone }: { rule?: AlertRule; onDone: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const kind = (rule?.kind ?? form.get('kind')) as AlertRule['kind'];
    const threshold = String(form.get('threshold') ?? '');
    const body = {
      name: String(form.get('name')), for_s: Number(form.get('for_s')), severity: form.get('severity') as AlertRule['severity'],
      enabled: form.get('enabled') === 'on', repeat_s: form.get('never') === 'on' ? null : Number(form.get('repeat_s')),
      threshold: WITH_THRESHOLD.has(kind) ? Number(threshold) : null,
    };
    try {
      if (rule) await call(api.PATCH('/api/v1/alert-rules/{id}', { params: { path: { id: rule.id } }, body }));
      else await call(api.POST('/api/v1/alert-rules', { body: { ...body, kind } }));
      setError(null);
      onDone();
    } catch (err) {
      setError(errorText(err, 'could not save the rule'));
    }
  };
  return (
    <form class="rule-editor" aria-label={rule ? `Edit ${rule.name}` : 'Add a rule'} onSubmit={submit}>
      <label>Name <input name="name" required maxLength={128} defaultValue={rule?.name ?? ''} /></label>
      {!rule && <label>Kind <select name="kind">{KINDS.map((k) => <option key={k} value={k}>{k}</option>)}</select></label>}
      <label>Threshold <input name="threshold" type="number" step="any" defaultValue={String(rule?.threshold ?? '')} /></label>
      <label>For (s) <input name="for_s" type="number" min={0} defaultValue={String(rule?.for_s ?? 0)} /></label>
      <label>Severity <select name="severity">{['info', 'warning', 'critical'].map((s) => <option key={s} selected={s === (rule?.severity ?? 'warning')}>{s}</option>)}</select></label>
      <label>Repeat (s) <input name="repeat_s" type="number" min={1} defaultValue={String(rule?.repeat_s ?? 14400)} /></label>
      <label><input name="never" type="checkbox" defaultChecked={rule?.repeat_s === null} /> never repeat</label>
      <label><input name="enabled" type="checkbox" defaultChecked={rule?.enabled ?? true} /> enabled</label>
      <button type="submit">Save</button>
      {error && <p role="alert" class="error">{error}</p>}
    </form>
  );
}

function Channels() {
  const [channels, setChannels] = useState<Channel[]>([]);
  const [error, setError] = useState<string | null>(null);
  const load = () => void call(api.GET('/api/v1/channels')).then((r) => setChannels(r.channels)).catch(() => undefined);
  useEffect(load, []);
  // A test delivery settles within seconds: look again shortly after.
  const test = (id: string) => call(api.POST('/api/v1/channels/{id}/test', { params: { path: { id } }, body: {} }))
    .then(() => { load(); setTimeout(load, 1500); }).catch((e) => setError(errorText(e, 'could not send')));
  const remove = (c: Channel) => confirm(`Delete the channel ${c.name}?`) && void call(api.DELETE('/api/v1/channels/{id}', { params: { path: { id: c.id } }, body: {} })).then(load);
  const add = async (event: Event) => {
    event.preventDefault();
    const element = event.currentTarget as HTMLFormElement;
    const form = new FormData(element);
    const text = (k: string) => (String(form.get(k) ?? '').trim() || undefined);
    try {
      await call(api.POST('/api/v1/channels', { body: { type: form.get('type') as Channel['type'], name: String(form.get('name')), url: text('url'), secret: text('secret'), chat_id: text('chat_id') } }));
      element.reset();
      setError(null);
      load();
    } catch (err) {
      setError(errorText(err, 'could not add the channel'));
    }
  };
  return (
    <>
      <table class="channels" aria-label="Channels">
        <thead><tr><th>Channel</th><th>Type</th><th>Last delivery</th><th /></tr></thead>
        <tbody>
          {channels.map((c) => {
            const d = c.last_delivery;
            return (
              <tr key={c.id} data-channel={c.name}>
                <td>{c.name}{!c.enabled && <span class="muted"> (off)</span>}</td><td>{c.type}</td>
                <td data-testid="last-delivery" class={d?.status === 'failed' ? 'error' : ''}>
                  {d ? `${d.status}${d.status_code ? ` (${d.status_code})` : ''} · ${d.title} · ${dateTime(d.updated_at)}${d.attempts > 1 ? ` · ${d.attempts} attempts` : ''}${d.error ? ` · ${d.error}` : ''}` : 'nothing sent yet'}
                </td>
                <td class="actions"><button type="button" onClick={() => test(c.id)}>Send test</button><button type="button" class="danger" onClick={() => remove(c)}>Delete</button></td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {error && <p role="alert" class="error">{error}</p>}
      <details class="add-channel"><summary>Add a channel</summary>
        <form aria-label="Add a channel" onSubmit={add}>
          <label>Type <select name="type">{CHANNEL_TYPES.map((t) => <option key={t}>{t}</option>)}</select></label>
          <label>Name <input name="name" required maxLength={128} /></label>
          <label>URL <input name="url" type="url" maxLength={2048} /></label>
          <label>Secret <input name="secret" type="password" autoComplete="off" /></label>
          <label>Chat id <input name="chat_id" maxLength={64} /></label>
          <button type="submit">Add</button>
          <p class="muted">Email channels (SMTP settings): POST /api/v1/channels, see docs/alerts.md.</p>
        </form>
      </details>
    </>
  );
}
