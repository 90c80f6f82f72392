import { useEffect, useRef, useState } from 'preact/hooks';
import type { LiveMessage } from '@dvic/protocol/shared';
import { api, call } from '../api/client.js';
import { live } from '../api/live.js';
import { applyDemoMessages, emptyDemos, withFetched, type DemosState } from './demos-store.js';
import { LatestLoad } from './latest-load.js';

/**
 * Every demo of the lab, live: fetched when the view opens and again after each reconnection
 * (messages lost meanwhile), then kept current by demo.updated / demo.removed.
 */
export function useLabDemos(): DemosState & { error: unknown } {
  const [state, setState] = useState<DemosState>(emptyDemos);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let closed = false;
    const loads = new LatestLoad<LiveMessage>();
    const load = () => {
      const mine = loads.begin();
      call(api.GET('/api/v1/demos')).then((r) => {
        const since = closed ? null : loads.finish(mine);
        if (!since) return;
        setError(null);
        setState((s) => withFetched(r.demos, since, s.version));
      }).catch((err: unknown) => { if (!closed && loads.isLatest(mine)) setError(err); });
    };
    const offMessages = live.onMessages((batch) => {
      loads.heard(batch);
      setState((s) => applyDemoMessages(s, batch));
    });
    const offStatus = live.onReopen(load);
    load();
    return () => {
      closed = true;
      offMessages();
      offStatus();
    };
  }, []);
  return { ...state, error };
}

/**
 * A value that follows `value` at most every `ms`: a list of 5,000 demos is filtered and sorted
 * a few times a second, not once per animation frame.
 */
export function useThrottled<T>(value: T, ms: number): T {
  const [shown, setShown] = useState(value);
  const last = useRef(0);
  useEffect(() => {
    const wait = last.current + ms - Date.now();
    const apply = () => { last.current = Date.now(); setShown(value); };
    if (wait <= 0) return void apply();
    const timer = setTimeout(apply, wait);
    return () => clearTimeout(timer);
  }, [value]);
  return shown;
}
