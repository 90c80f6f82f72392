// Devices as the dashboard shows them: the REST list, then live messages applied in order.
import type { DeviceView, LiveMessage } from '@dvic/protocol/shared';

export interface DevicesState {
  byId: Map<string, DeviceView>;
  /** Bumped on every change, so views can memoise on it. */
  version: number;
  /** False until the list was fetched once. */
  loaded: boolean;
}

export const emptyDevices = (): DevicesState => ({ byId: new Map(), version: 0, loaded: false });

/** The fetched list replaces everything (after each (re)connection's snapshot). */
export function withList(state: DevicesState, devices: DeviceView[]): DevicesState {
  return { byId: new Map(devices.map((d) => [d.id, d])), version: state.version + 1, loaded: true };
}

/** Applies the device messages of a live batch; the same state when none concerned devices. */
export function applyDeviceLive(state: DevicesState, batch: LiveMessage[]): DevicesState {
  let byId: Map<string, DeviceView> | null = null;
  const edit = () => (byId ??= new Map(state.byId));
  for (const m of batch) {
    switch (m.type) {
      case 'device.updated': edit().set(m.data.device.id, m.data.device); break;
      case 'device.removed': edit().delete(m.data.device_id); break;
      case 'device.status': {
        const before = (byId ?? state.byId).get(m.data.device_id);
        if (m.data.device) edit().set(m.data.device_id, m.data.device);
        else if (before) edit().set(m.data.device_id, { ...before, status: m.data.status, status_since: m.data.since });
        break;
      }
      case 'devices.seen':
        for (const s of m.data.devices) {
          const before = (byId ?? state.byId).get(s.device_id);
          if (before) edit().set(s.device_id, { ...before, last_seen: s.last_seen, last_status: s.last_status, last_message: s.last_message, numbers: s.numbers, ping_count: s.ping_count });
        }
        break;
      default: break;
    }
  }
  return byId ? { ...state, byId, version: state.version + 1 } : state;
}

const RANK: Record<DeviceView['status'], number> = { down: 0, late: 1, new: 2, up: 3, paused: 4 };

/** Devices to show: matching a text (name, label, demo), down and late first when asked. */
export function visibleDevices(state: DevicesState, text: string, downFirst: boolean): DeviceView[] {
  const needle = text.trim().toLowerCase();
  const list = [...state.byId.values()].filter((d) => !needle || [d.name, d.demo ?? '', ...Object.entries(d.labels).map(([k, v]) => `${k}=${v}`)].some((s) => s.toLowerCase().includes(needle)));
  return list.sort((a, b) => (downFirst ? RANK[a.status] - RANK[b.status] : 0) || a.name.localeCompare(b.name));
}

/** The three URL shapes a device can use, and an Arduino snippet, for a server and a token. */
export function deviceUrls(origin: string, token: string, periodS = 60) {
  return {
    keepalive: `${origin}/api/v1/devices/${token}/keepalive`,
    healthchecks: `${origin}/ping/${token}`,
    kuma: `${origin}/api/push/${token}?status=up&msg=OK&ping=`,
    curl: `curl -fsS -m 5 -X POST ${origin}/api/v1/devices/${token}/keepalive`,
    arduino: [
      '#include <DvicKeepalive.h>',
      '',
      `DvicKeepalive dvic("${origin}", "${token}");`,
      '',
      'void setup() {',
      '  dvic.begin("my-wifi", "wifi-password");',
      `  dvic.setPeriod(${periodS});`,
      '}',
      '',
      'void loop() {',
      `  dvic.loop();   // keepalive every ${periodS} s with uptime, RSSI, free heap`,
      '}',
    ].join('\n'),
  };
}
