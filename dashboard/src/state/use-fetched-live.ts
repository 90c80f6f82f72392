import { useEffect } from 'preact/hooks';
import type { LiveMessage } from '@dvic/protocol/shared';
import { live } from '../api/live.js';
import { LatestLoad } from './latest-load.js';

/** What a view fetches and which live messages keep it current. */
export interface FetchedLive<T, M> {
  fetch: () => Promise<T>;
  /** The messages of a live batch that concern it. */
  select: (batch: LiveMessage[]) => M[];
  /** The latest load answered; `heardSince`: those messages heard while it was on its way. */
  answered: (answer: T, heardSince: M[]) => void;
  heard: (messages: M[]) => void;
  /** The latest load failed (an earlier one's failure is not shown). */
  failed: (err: unknown) => void;
}

/**
 * Fetched when the view opens and again after each reconnection (what the stream missed
 * meanwhile), then kept current by live messages; of overlapping loads only the latest counts
 * (LatestLoad). Runs again when `deps` change.
 */
export function useFetchedLive<T, M>(source: FetchedLive<T, M>, deps: unknown[]): void {
  useEffect(() => {
    let closed = false;
    const loads = new LatestLoad<M>();
    const load = () => {
      const mine = loads.begin();
      source.fetch().then((answer) => {
        const since = closed ? null : loads.finish(mine);
        if (since) source.answered(answer, since);
      }).catch((err: unknown) => { if (!closed && loads.isLatest(mine)) source.failed(err); });
    };
    const offMessages = live.onMessages((batch) => {
      const messages = source.select(batch);
      if (!messages.length) return;
      loads.heard(messages);
      source.heard(messages);
    });
    const offReopen = live.onReopen(load);
    load();
    return () => {
      closed = true;
      offMessages();
      offReopen();
    };
  }, deps);
}
