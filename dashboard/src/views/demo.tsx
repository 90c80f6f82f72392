import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { duration, type DemoActions, type DemoSchedule, type DemoView, type LabDemo, type LogRecordView, type LogsRecordsLiveMessage } from '@dvic/protocol/shared';
import { api, call, errorText } from '../api/client.js';
import { live } from '../api/live.js';
import { DemoStateBadge, expectationText } from '../components/demo-state.js';
import { ErrorNotice } from '../components/error-notice.js';
import { FieldChips } from '../components/field-chips.js';
import { clockTime, dateTime } from '../format.js';
import { navigate, onLink } from '../router.js';
import { applyLogBatches, mergeRecords, resumeAfter } from '../state/logs-state.js';
import { useLiveMessages, useNodes } from '../state/use-live.js';
import { useNow } from './overview.js';
import { MuteButton } from '../components/mute-button.js';

const DAYS: DemoSchedule['days'] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const TAIL_LINES = 100;
const ACTIONS = ['start', 'stop', 'restart'] as const;

/** One demo: its state, its runs and restarts on a time line, its settings, its logs (live). */
export function DemoPage({ demoId }: { demoId: string }) {
  const nodes = useNodes();
  const now = useNow(2000);
  const [demo, setDemo] = useState<LabDemo | null>(null);
  const [gone, setGone] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setDemo(null);
    call(api.GET('/api/v1/demos/{id}', { params: { path: { id: demoId } } })).then((r) => setDemo(r.demo)).catch(setError);
  }, [demoId]);
  useLiveMessages(['demo.updated', 'demo.removed'], useCallback((messages) => {
    for (const m of messages) {
      if (m.type === 'demo.updated') { const mine = m.data.demos.find((d) => d.id === demoId); if (mine) setDemo(mine); }
      if (m.type === 'demo.removed' && m.data.ids.includes(demoId)) setGone(true);
    }
  }, [demoId]));

  if (gone) return <p class="muted">This demo was forgotten (its logs stay). <a href="/demos" onClick={(e) => onLink(e, '/demos')}>All demos</a></p>;
  if (error) return <ErrorNotice error={error} fallback="this demo cannot be shown" />;
  if (!demo) return <p class="muted">Loading…</p>;
  const node = nodes.byId.get(demo.node_id)?.node;
  const running = demo.state === 'running' || demo.state === 'restarting';
  return (
    <section class="detail demo-page" aria-labelledby="demo-title">
      <div class="toolbar">
        <h1 id="demo-title">{demo.name}</h1>
        <DemoStateBadge demo={demo} now={now} />
        <span>on <a href={`/nodes/${demo.node_id}`} onClick={(e) => onLink(e, `/nodes/${demo.node_id}`)}>{node?.name ?? demo.node_id}</a></span>
        <span class="spacer" />
        <MuteButton target={{ node: demo.node_id, demo: demo.name }} what={demo.name} />
        <a class="button" href={`/logs?node=${demo.node_id}&demo=${encodeURIComponent(demo.name)}`} onClick={(e) => onLink(e, `/logs?node=${demo.node_id}&demo=${encodeURIComponent(demo.name)}`)}>All its logs</a>
        {!running && <ForgetButton demo={demo} />}
      </div>
      <ActionButtons demo={demo} />
      <dl class="facts">
        <dt>Uptime</dt><dd>{running && demo.started_at !== null ? duration(now - demo.started_at) : '–'}</dd>
        <dt>Restarts</dt><dd>{demo.restarts} ({demo.restarts_today} today){demo.crash_loop ? ' · ⚠ crash loop' : ''}</dd>
        <dt>Expected</dt><dd data-testid="expected">{expectationText(demo)}{demo.expected && !demo.in_schedule ? ' · outside its hours now' : ''}</dd>
        <dt>Lines</dt><dd>{demo.line_count} · {demo.error_count} errors</dd>
        {demo.notes && <><dt>Notes</dt><dd>{demo.notes}</dd></>}
      </dl>
      <Timeline runs={demo.runs} now={now} />
      <Settings demo={demo} onSaved={setDemo} />
      <Runs runs={demo.runs} now={now} />
      <DemoLogs nodeId={demo.node_id} name={demo.name} />
    </section>
  );
}

function ForgetButton({ demo }: { demo: LabDemo }) {
  const [error, setError] = useState('');
  const forget = () => call(api.DELETE('/api/v1/demos/{id}', { params: { path: { id: demo.id } }, body: {} }))
    .then(() => navigate('/demos'), (err: unknown) => setError(errorText(err, 'cannot forget this demo')));
  return <>{error && <span class="error">{error}</span>}<button type="button" class="danger" onClick={forget} title="Its logs stay">Forget this demo</button></>;
}

/**
 * Start, stop and restart: each runs the command set for it on the demo's node, through the
 * command path (audited; its output on the Commands page).
 */
function ActionButtons({ demo }: { demo: LabDemo }) {
  const [message, setMessage] = useState('');
  const run = (action: keyof DemoActions) => {
    setMessage(`${action}: sending…`);
    call(api.POST('/api/v1/demos/{id}/actions/{action}', { params: { path: { id: demo.id, action } }, body: {} }))
      .then((r) => setMessage(`${action}: sent as a command (${r.command.command})`), (err: unknown) => setMessage(errorText(err, `${action} failed`)));
  };
  return (
    <div class="demo-actions" role="group" aria-label="Demo actions">
      {ACTIONS.map((action) => (
        <button key={action} type="button" disabled={demo.actions[action] === null} onClick={() => run(action)}
          title={demo.actions[action] ?? `No ${action} command set (see the settings below)`}>{action[0]!.toUpperCase() + action.slice(1)}</button>
      ))}
      <span role="status" data-testid="demo-action-status">{message}</span>
      {message.includes('sent as a command') && <a href="/commands" onClick={(e) => onLink(e, '/commands')}>Its output</a>}
    </div>
  );
}

/** Expected or not, when (lab time), notes and action commands: PATCH /api/v1/demos/{id}. */
function Settings({ demo, onSaved }: { demo: LabDemo; onSaved: (d: LabDemo) => void }) {
  const [message, setMessage] = useState('');
  const [scheduled, setScheduled] = useState(demo.schedule !== null);
  const submit = (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const schedule: DemoSchedule | null = scheduled
      ? { days: DAYS.filter((d) => f.get(`day-${d}`) === 'on'), open: String(f.get('open')), close: String(f.get('close')) } : null;
    const notes = String(f.get('notes') ?? '').trim();
    const command = (action: keyof DemoActions) => String(f.get(`action-${action}`) ?? '').trim() || null;
    const actions = { start: command('start'), stop: command('stop'), restart: command('restart') };
    call(api.PATCH('/api/v1/demos/{id}', { params: { path: { id: demo.id } }, body: { expected: f.get('expected') === 'on', schedule, notes: notes || null, actions } }))
      .then((r) => { onSaved(r.demo); setMessage('Saved.'); }, (err: unknown) => setMessage(errorText(err, 'not saved')));
  };
  const s = demo.schedule;
  return (
    <form class="settings" onSubmit={submit} aria-label="Demo settings" key={demo.id}>
      <label class="check"><input type="checkbox" name="expected" defaultChecked={demo.expected_by === 'demo'} /> Expected on this node (down when it is not running)</label>
      {demo.expected_by === 'label' && <p class="muted">Expected by a label rule of its node.</p>}
      <label class="check"><input type="checkbox" name="scheduled" checked={scheduled} onChange={(e) => setScheduled((e.currentTarget as HTMLInputElement).checked)} /> Only during opening hours (lab time)</label>
      {scheduled && (
        <>
          <div class="days">{DAYS.map((d) => <label key={d} class="check"><input type="checkbox" name={`day-${d}`} defaultChecked={s ? s.days.includes(d) : !['sat', 'sun'].includes(d)} /> {d}</label>)}</div>
          <label>Open <input type="time" name="open" required defaultValue={s?.open ?? '09:00'} /></label>
          <label>Close <input type="time" name="close" required defaultValue={s?.close ?? '18:00'} /></label>
        </>
      )}
      <label>Notes <textarea name="notes" maxLength={2000} defaultValue={demo.notes ?? ''} /></label>
      <fieldset class="action-commands"><legend>Commands run on its node by the buttons above (as root, audited)</legend>
        {ACTIONS.map((action) => (
          <label key={action}>{action[0]!.toUpperCase() + action.slice(1)} <input name={`action-${action}`} maxLength={4096} placeholder={`e.g. systemctl ${action} ${demo.name}`} defaultValue={demo.actions[action] ?? ''} /></label>
        ))}
      </fieldset>
      <div><button type="submit" class="primary">Save</button> <span role="status">{message}</span></div>
    </form>
  );
}

/** The runs of the last 24 hours on a line: restarts show as gaps and new bars. */
function Timeline({ runs, now }: { runs: DemoView[]; now: number }) {
  const from = now - 86_400_000;
  const x = (t: number) => Math.max(0, Math.min(1000, ((t - from) / 86_400_000) * 1000));
  return (
    <figure>
      <svg class="timeline" viewBox="0 0 1000 36" preserveAspectRatio="none" role="img" aria-label={`${runs.length} runs in the last 24 hours`}>
        {runs.map((r) => {
          const start = r.started_at ?? r.since;
          const end = r.alive ? now : r.exited_at ?? r.since;
          if (end < from) return null;
          const crashed = !r.alive && (r.ended === 'vanished' || (r.ended === 'exited' && (r.exit_code ?? 0) !== 0));
          return <rect key={r.token} class={`run ${r.alive ? '' : 'ended'} ${crashed ? 'crashed' : ''}`} x={x(start)} y={6} width={Math.max(2, x(end) - x(start))} height={24}><title>{`${dateTime(start)} – ${r.alive ? 'now' : dateTime(end)}`}</title></rect>;
        })}
      </svg>
      <figcaption class="muted">Runs over the last 24 hours (now at the right)</figcaption>
    </figure>
  );
}

const ENDED_TEXT = { exited: 'exited', killed: 'stopped by a signal', vanished: 'vanished (crash)' } as const;

function Runs({ runs, now }: { runs: DemoView[]; now: number }) {
  return (
    <table class="runs"><caption>Runs (newest first)</caption>
      <thead><tr><th>Started</th><th>Ended</th><th>How</th><th>Exit code</th><th>PID</th><th>Lines</th><th>Errors</th></tr></thead>
      <tbody>
        {runs.length === 0 && <tr><td colSpan={7} class="muted">No run yet.</td></tr>}
        {runs.map((r) => (
          <tr key={r.token} data-token={r.token}>
            <td>{dateTime(r.started_at ?? r.since)}</td>
            <td>{r.alive ? `running ${duration(now - (r.started_at ?? r.since))}` : dateTime(r.exited_at ?? r.since)}</td>
            <td>{r.alive ? '–' : ENDED_TEXT[r.ended ?? 'vanished']}</td>
            <td>{r.exit_code ?? '–'}</td><td>{r.pid}</td><td>{r.line_count}</td><td>{r.error_count}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

let tails = 0;

/** The demo's newest lines, then new ones as they come. */
function DemoLogs({ nodeId, name }: { nodeId: string; name: string }) {
  const shown = useRef<LogRecordView[]>([]);
  const [lines, setLines] = useState<LogRecordView[]>([]);
  const subscription = useRef('');
  const show = (next: LogRecordView[]) => { shown.current = next; setLines(next); };
  useEffect(() => {
    const id = `demo-tail-${++tails}`;
    subscription.current = id;
    let replaced = false;
    call(api.GET('/api/v1/logs', { params: { query: { node: nodeId, demo: name, limit: TAIL_LINES } } })).then((page) => {
      if (replaced) return;
      show(mergeRecords([], page.records, TAIL_LINES));
      live.subscribe('demo-logs', () => ({ type: 'logs.subscribe', id, data: { node: nodeId, demo: name, after_id: resumeAfter(shown.current) } }));
    }).catch(() => undefined);
    return () => {
      replaced = true;
      live.subscribe('demo-logs', null);
      live.send({ type: 'logs.unsubscribe', data: {} });
    };
  }, [nodeId, name]);
  useLiveMessages(['logs.records'], useCallback((messages: LogsRecordsLiveMessage[]) => {
    const next = applyLogBatches(shown.current, subscription.current, messages, TAIL_LINES);
    if (next !== shown.current) show(next);
  }, []));
  const filterBy = (k: string, v: string) => navigate(`/logs?node=${nodeId}&demo=${encodeURIComponent(name)}&field.${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return (
    <section aria-label="Latest log lines">
      <h2>Latest lines</h2>
      <div class="log-lines short" role="log">
        {lines.length === 0 && <p class="muted empty">No line yet.</p>}
        {lines.map((r) => (
          <div key={r.id} class={`log-line level-${r.level}`} data-id={r.id}>
            <time dateTime={new Date(r.ts).toISOString()}>{clockTime(r.ts)}</time><span class="level">{r.level}</span>
            <span class="message">{r.message}<FieldChips fields={r.fields} onPick={filterBy} /></span>
          </div>
        ))}
      </div>
    </section>
  );
}
