import { useEffect, useState } from 'preact/hooks';
import type { DeviceDetailView, DevicePingView } from '@dvic/protocol/shared';
import { duration } from '@dvic/protocol/shared';
import { api, call } from '../api/client.js';
import { ErrorNotice } from '../components/error-notice.js';
import { Sparkline } from '../components/sparkline.js';
import { StatusBadge } from '../components/status.js';
import { navigate, onLink } from '../router.js';
import { useLiveMessages } from '../state/use-live.js';
import { DeviceUrls } from './device-urls.js';
import { useNow } from './overview.js';
import { MuteButton } from '../components/mute-button.js';

const PINGS = 120;
const LIVE_TYPES: ('device.status' | 'devices.seen' | 'device.updated')[] = ['device.status', 'devices.seen', 'device.updated'];

/** How far back the number sparklines reach (the metric history picks its tier from it). */
const NUMBERS_FROM = '24h';

/** /devices/<id>: status, history strip of pings, last body, numbers, URLs and the Arduino snippet. */
export function DeviceDetail({ deviceId }: { deviceId: string }) {
  const now = useNow(1000);
  const [device, setDevice] = useState<DeviceDetailView | null>(null);
  const [pings, setPings] = useState<DevicePingView[]>([]);
  // Each numeric field of its pings over the last 24 h, from the metric history (oldest first).
  const [numbers, setNumbers] = useState<[string, number[]][]>([]);
  const [error, setError] = useState<unknown>(null);
  const [token, setToken] = useState<string | null>(null);
  const load = () => {
    call(api.GET('/api/v1/devices/{id}', { params: { path: { id: deviceId } } })).then((r) => { setDevice(r.device); setError(null); }).catch(setError);
    call(api.GET('/api/v1/devices/{id}/pings', { params: { path: { id: deviceId }, query: { limit: PINGS } } })).then((r) => setPings(r.pings)).catch(() => undefined);
    call(api.GET('/api/v1/devices/{id}/metrics', { params: { path: { id: deviceId }, query: { from: NUMBERS_FROM } } }))
      .then((r) => setNumbers(r.series.map((s) => [s.name, s.points.map((p) => p[1] ?? Number.NaN).filter(Number.isFinite)]))).catch(() => undefined);
  };
  useEffect(load, [deviceId]);
  useLiveMessages(LIVE_TYPES, (messages) => {
    const mine = messages.some((m) => (m.type === 'devices.seen' ? m.data.devices.some((d) => d.device_id === device?.id)
      : m.type === 'device.status' ? m.data.device_id === device?.id : m.data.device.id === device?.id));
    if (mine) load();
  });
  if (error) return <ErrorNotice error={error} fallback="could not load this device" />;
  if (!device) return <p class="muted">Loading…</p>;
  const act = (action: 'pause' | 'resume') => call(api.POST(`/api/v1/devices/{id}/${action}`, { params: { path: { id: device.id } }, body: {} })).then(load).catch((e) => setError(e));
  const newToken = () => call(api.POST('/api/v1/devices/{id}/token', { params: { path: { id: device.id } }, body: {} })).then((r) => setToken(r.token)).catch((e) => setError(e));
  const remove = () => {
    if (!confirm(`Remove ${device.name} and its history?`)) return;
    void call(api.DELETE('/api/v1/devices/{id}', { params: { path: { id: device.id } }, body: {} })).then(() => navigate('/devices')).catch((e) => setError(e));
  };
  return (
    <section class="device-detail" aria-labelledby="device-title">
      <p><a href="/devices" onClick={(e) => onLink(e, '/devices')}>← Devices</a></p>
      <h1 id="device-title">{device.name} <span data-testid="device-status"><StatusBadge status={device.status} since={device.status_since} now={now} /></span></h1>
      <p class="muted">
        every {device.period_s} s, grace {device.grace_s} s · last seen {device.last_seen ? `${duration(now - device.last_seen)} ago` : 'never'}
        · uptime 24 h {pct(device.uptime_24h)} · 7 d {pct(device.uptime_7d)} · {device.ping_count} pings
        {device.firmware && ` · firmware ${device.firmware}`}{device.demo && ` · demo ${device.demo}`}
      </p>
      <p class="actions">
        {device.status === 'paused' ? <button type="button" onClick={() => act('resume')}>Resume</button> : <button type="button" onClick={() => act('pause')}>Pause</button>}
        <button type="button" onClick={newToken}>New token</button>
        <button type="button" class="danger" onClick={remove}>Remove</button>
        <MuteButton target={{ device: device.id }} what={device.name} />
      </p>
      {device.last_message && <p>Last message: <q>{device.last_message}</q></p>}
      <h2>Pings</h2>
      <div class="ping-strip" role="list" aria-label="Recent pings, oldest first">
        {[...pings].reverse().map((p) => <span key={p.id} role="listitem" class={`ping ping-${p.kind}`} title={`${new Date(p.at).toLocaleString()} · ${p.source} ${p.status ?? ''}${p.duration_ms !== null ? ` · run ${duration(p.duration_ms)}` : ''}`} />)}
      </div>
      <h2>Numbers</h2>
      <table class="numbers"><tbody>
        {numbers.map(([name, values]) => <tr key={name}><th>{name}</th><td class="num">{values.at(-1)}</td><td><Sparkline values={values} label={name} /></td></tr>)}
      </tbody></table>
      <h2>Last body</h2>
      <pre class="last-body" data-testid="last-body">{device.last_body ?? '(none)'}</pre>
      <h2>Status changes</h2>
      <ul class="transitions">{device.transitions.map((t, i) => <li key={i}>{new Date(t.at).toLocaleString()} · {t.from} → <strong>{t.to}</strong> · {t.reason}</li>)}</ul>
      <h2>URLs</h2>
      {token ? <p>New token, shown this once:</p> : <p class="muted">The token was shown once when the device was added; “New token” makes another (the old one stops working).</p>}
      <DeviceUrls token={token ?? '<token>'} periodS={device.period_s} />
    </section>
  );
}

const pct = (v: number | null) => (v === null ? '–' : `${v} %`);
