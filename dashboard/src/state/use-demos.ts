import { useEffect, useRef, useState } from 'preact/hooks';
import { api, call } from '../api/client.js';
import { applyDemoMessages, emptyDemos, withFetched, type DemosState } from './demos-store.js';
import { useFetchedLive } from './use-fetched-live.js';

/**
 * Every demo of the lab, live: fetched when the view opens and again after each reconnection
 * (messages lost meanwhile), then kept current by demo.updated / demo.removed.
 */
export function useLabDemos(): DemosState & { error: unknown } {
  const [state, setState] = useState<DemosState>(emptyDemos);
  const [error, setError] = useState<unknown>(null);
  useFetchedLive({
    fetch: () => call(api.GET('/api/v1/demos')),
    select: (batch) => batch,
    answered: (r, since) => {
      setError(null);
      setState((s) => withFetched(r.demos, since, s.version));
    },
    heard: (batch) => setState((s) => applyDemoMessages(s, batch)),
    failed: setError,
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
