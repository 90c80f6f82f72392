import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { LiveMessage } from '@dvic/protocol/shared';
import { live, type LiveStatus } from '../api/live.js';
import { applyLive, emptyState, type NodesState } from './nodes-store.js';

export const NodesContext = createContext<NodesState>(emptyState());

/** The live nodes state for the whole app (one WebSocket). */
export function useLiveNodes(enabled: boolean): NodesState {
  const [state, setState] = useState<NodesState>(emptyState);
  useEffect(() => {
    if (!enabled) return;
    const off = live.onMessages((batch) => setState((s) => applyLive(s, batch)));
    live.start();
    return () => {
      off();
      live.stop();
    };
  }, [enabled]);
  return state;
}

export function useNodes(): NodesState {
  return useContext(NodesContext);
}

export function useLiveStatus(): LiveStatus {
  const [status, setStatus] = useState<LiveStatus>(live.status);
  useEffect(() => live.onStatus(setStatus), []);
  return status;
}

type MessageOf<T extends LiveMessage['type']> = Extract<LiveMessage, { type: T }>;

/** Messages of some types (logs, commands), delivered to one view while it is shown. */
export function useLiveMessages<T extends LiveMessage['type']>(types: T[], handler: (messages: MessageOf<T>[]) => void): void {
  useEffect(() => live.onMessages((batch) => {
    const mine = batch.filter((m): m is MessageOf<T> => (types as string[]).includes(m.type));
    if (mine.length) handler(mine);
  }), [types.join(','), handler]);
}
