import { useEffect, useState } from 'preact/hooks';
import type { Alert, AlertMute } from '@dvic/protocol/shared';
import { api, call, errorText } from '../api/client.js';
import { clockTime } from '../format.js';
import { onLink } from '../router.js';
import { firingAlerts } from '../state/alerts-store.js';
import { useAlerts } from '../state/use-alerts.js';

/** What a mute silences: a node (id), a demo (name, on a node), a device (id). */
export interface MuteTarget {
  node?: string;
  demo?: string;
  device?: string;
}

const DURATIONS = [['3600', '1 hour'], ['14400', '4 hours'], ['86400', '1 day'], ['604800', '1 week']] as const;

const covers = (m: AlertMute, t: MuteTarget) =>
  (m.node_id ?? undefined) === t.node && (m.demo ?? undefined) === t.demo && (m.device_id ?? undefined) === t.device && m.rule_id === null && m.starts_at <= Date.now();

const about = (a: Alert, t: MuteTarget) => (t.device ? a.subject.device_id === t.device
  : a.subject.node_id === t.node && (t.demo === undefined || a.subject.demo === t.demo));

/** The alerts firing about a node, demo or device, and a button acknowledging those nobody has. */
function FiringHere({ target }: { target: MuteTarget }) {
  const alerts = useAlerts();
  const here = firingAlerts(alerts).filter((a) => about(a, target));
  const open = here.filter((a) => a.acked_at === null);
  if (!here.length) return null;
  const ack = () => Promise.all(open.map((a) => call(api.POST('/api/v1/alerts/{id}/ack', { params: { path: { id: a.id } }, body: {} })))).catch(() => undefined);
  return (
    <span class="firing-here" data-testid="firing-here">
      <a href="/alerts" onClick={(e) => onLink(e, '/alerts')}>⚠ {here.length} alert{here.length > 1 ? 's' : ''} firing</a>
      {open.length > 0 && <button type="button" onClick={ack}>Acknowledge</button>}
    </span>
  );
}

/** "Mute alerts" for a while on a node, demo or device page; while muted, until when and "Unmute". */
export function MuteButton({ target, what }: { target: MuteTarget; what: string }) {
  const [mute, setMute] = useState<AlertMute | null>(null);
  const [seconds, setSeconds] = useState('3600');
  const [error, setError] = useState<string | null>(null);
  const key = JSON.stringify(target);
  useEffect(() => {
    void call(api.GET('/api/v1/alert-mutes')).then((r) => setMute(r.mutes.find((m) => covers(m, target)) ?? null)).catch(() => undefined);
  }, [key]);
  const add = () => call(api.POST('/api/v1/alert-mutes', { body: { ...target, duration_s: Number(seconds) } }))
    .then((r) => { setMute(r.mute); setError(null); }).catch((e) => setError(errorText(e, 'could not mute')));
  const end = (id: string) => call(api.DELETE('/api/v1/alert-mutes/{id}', { params: { path: { id } }, body: {} }))
    .then(() => setMute(null)).catch((e) => setError(errorText(e, 'could not unmute')));
  return (
    <span class="mute" data-testid="mute">
      <FiringHere target={target} />
      {mute
        ? <><span class="muted" data-testid="muted-until">🔕 alerts muted until {clockTime(mute.ends_at)}</span> <button type="button" onClick={() => end(mute.id)}>Unmute</button></>
        : <>
          <select aria-label={`Mute ${what} for`} value={seconds} onChange={(e) => setSeconds((e.currentTarget as HTMLSelectElement).value)}>
            {DURATIONS.map(([v, label]) => <option key={v} value={v}>{label}</option>)}
          </select>
          <button type="button" onClick={add}>Mute alerts</button>
        </>}
      {error && <span role="alert" class="error"> {error}</span>}
    </span>
  );
}
