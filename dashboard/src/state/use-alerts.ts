import { useEffect, useState } from 'preact/hooks';
import { api, call } from '../api/client.js';
import { live } from '../api/live.js';
import { applyAlertLive, emptyAlerts, withAlerts, type AlertsState } from './alerts-store.js';

/** Firing alerts and the recent history, fetched once and after each (re)connection, kept current live. */
export function useAlerts(): AlertsState {
  const [state, setState] = useState<AlertsState>(emptyAlerts);
  useEffect(() => {
    const load = () => void call(api.GET('/api/v1/alerts', { params: { query: { limit: 500 } } })).then((r) => setState((s) => withAlerts(s, r.alerts))).catch(() => undefined);
    load();
    return live.onMessages((batch) => {
      if (batch.some((m) => m.type === 'snapshot')) load();
      setState((s) => applyAlertLive(s, batch));
    });
  }, []);
  return state;
}
