import { useEffect, useState } from 'preact/hooks';
import { api, call } from '../api/client.js';
import { live } from '../api/live.js';
import { applyDeviceLive, emptyDevices, withList, type DevicesState } from './devices-store.js';

/** Every device, fetched once and again after each (re)connection, kept current by live messages. */
export function useDevices(): DevicesState {
  const [state, setState] = useState<DevicesState>(emptyDevices);
  useEffect(() => {
    const load = () => void call(api.GET('/api/v1/devices')).then((r) => setState((s) => withList(s, r.devices))).catch(() => undefined);
    load();
    return live.onMessages((batch) => {
      if (batch.some((m) => m.type === 'snapshot')) load();
      setState((s) => applyDeviceLive(s, batch));
    });
  }, []);
  return state;
}
