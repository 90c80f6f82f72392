import { useMemo, useState } from 'preact/hooks';
import type { DeviceView } from '@dvic/protocol/shared';
import { duration } from '@dvic/protocol/shared';
import { api, call, errorText } from '../api/client.js';
import { StatusBadge } from '../components/status.js';
import { navigate, onLink } from '../router.js';
import { visibleDevices, type DevicesState } from '../state/devices-store.js';
import { useDevices } from '../state/use-devices.js';
import { DeviceUrls } from './device-urls.js';
import { useNow } from './overview.js';

/** Numbers shown in a row, the usual ones first. */
export function numbersText(numbers: Record<string, number>): string {
  const order = ['rssi', 'free_heap', 'uptime_s'];
  const keys = Object.keys(numbers).sort((a, b) => (order.indexOf(b) - order.indexOf(a)) || a.localeCompare(b));
  return keys.slice(0, 4).map((k) => `${k} ${numbers[k]}`).join(' · ') || '–';
}

/** /devices: every keepalive device, a form to add one (its token and URLs shown once). */
export function Devices() {
  const state = useDevices();
  const [text, setText] = useState('');
  return (
    <section class="devices" aria-labelledby="devices-title">
      <div class="toolbar">
        <h1 id="devices-title">Devices <span class="muted" data-testid="device-counts">{[...state.byId.values()].filter((d) => d.status === 'up').length} up of {state.byId.size}</span></h1>
        <label>Search <input type="search" placeholder="name, label, demo" value={text} onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)} /></label>
      </div>
      <AddDevice />
      <DeviceTable state={state} text={text} />
    </section>
  );
}

export function DeviceTable({ state, text }: { state: DevicesState; text: string }) {
  const now = useNow(1000);
  const list = useMemo(() => visibleDevices(state, text, true), [state.version, text]);
  return (
    <div class="table device-table" role="table" aria-label="Devices">
      <div class="row head" role="row">
        {['Name', 'Kind', 'Status', 'Last seen', 'Message', 'Numbers'].map((h) => <span key={h} role="columnheader">{h}</span>)}
      </div>
      {list.length === 0
        ? <p class="muted empty">{state.byId.size ? 'No device matches.' : 'No devices yet: add one here or with dvic devices add <name>.'}</p>
        : list.map((d) => <DeviceRow key={d.id} device={d} now={now} />)}
    </div>
  );
}

function DeviceRow({ device: d, now }: { device: DeviceView; now: number }) {
  const href = `/devices/${d.id}`;
  return (
    <div class={`row device-row ${d.status}`} role="row" data-device={d.name} tabIndex={0} onClick={() => navigate(href)}>
      <span role="cell" class="name"><a href={href} onClick={(e) => onLink(e, href)}>{d.name}</a>
        <span class="labels">{Object.entries(d.labels).map(([k, v]) => <span key={k} class="label">{k}={v}</span>)}</span></span>
      <span role="cell" class="muted">device</span>
      <span role="cell" data-testid="device-status"><StatusBadge status={d.status} since={d.status_since} now={now} /></span>
      <span role="cell" class="num">{d.last_seen ? `${duration(now - d.last_seen)} ago` : 'never'}</span>
      <span role="cell" class="muted">{d.last_message ?? ''}</span>
      <span role="cell" class="num">{numbersText(d.numbers)}</span>
    </div>
  );
}

function AddDevice() {
  const [created, setCreated] = useState<{ name: string; token: string; periodS: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    const element = event.currentTarget as HTMLFormElement;
    const form = new FormData(element);
    setError(null);
    try {
      const body = { name: String(form.get('name')), period_s: Number(form.get('period_s')), grace_s: Number(form.get('grace_s')) };
      const r = await call(api.POST('/api/v1/devices', { body }));
      setCreated({ name: r.device.name, token: r.token, periodS: r.device.period_s });
      element.reset();
    } catch (err) {
      setError(errorText(err, 'could not add the device'));
    }
  };
  return (
    <details class="add-device">
      <summary>Add a device</summary>
      <form onSubmit={submit} aria-label="Add a device">
        <label>Name <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]*" maxLength={64} /></label>
        <label>Period (s) <input name="period_s" type="number" min={1} defaultValue="60" /></label>
        <label>Grace (s) <input name="grace_s" type="number" min={0} defaultValue="30" /></label>
        <button type="submit">Add</button>
        {error && <p role="alert" class="error">{error}</p>}
      </form>
      {created && <div class="token-once" data-testid="new-device-token">
        <p><strong>{created.name}</strong>: its token is shown this once. Copy a URL now.</p>
        <DeviceUrls token={created.token} periodS={created.periodS} />
      </div>}
    </details>
  );
}
