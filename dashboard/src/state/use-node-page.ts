import { useEffect, useRef, useState } from 'preact/hooks';
import type { DemoView, NodeDemosLiveMessage, NodeDetailView, NodeView } from '@dvic/protocol/shared';
import { api, call } from '../api/client.js';
import { withToldDemos } from './node-demos.js';
import { useFetchedLive } from './use-fetched-live.js';

/** A node as its page shows it: live from the nodes store, its demo runs once fetched. */
export type PageNode = NodeView & { demos?: DemoView[] };

/**
 * One node with its whole list of demo runs, for its page: fetched when the page opens and again
 * after each reconnection (what the stream missed), then kept current by node.demos, which tells
 * only the runs that changed; those told while a fetch is on its way are laid over its answer.
 * `edited`: the node as a change (rename, labels) answered, its runs kept.
 */
export function useNodePage(ref: string): { node: NodeDetailView | null; error: unknown; edited: (node: NodeView) => void } {
  const [node, setNode] = useState<NodeDetailView | null>(null);
  const [error, setError] = useState<unknown>(null);
  const id = useRef(ref); // once found, by its id: a rename must not lose the page (or move it to another node)
  useEffect(() => {
    id.current = ref;
    setNode(null);
    setError(null);
  }, [ref]);
  useFetchedLive({
    fetch: () => call(api.GET('/api/v1/nodes/{id}', { params: { path: { id: id.current } } })),
    select: (batch) => batch.filter((m): m is NodeDemosLiveMessage => m.type === 'node.demos'),
    answered: (r, told) => {
      id.current = r.node.id;
      setError(null);
      setNode(told.reduce(withToldDemos, r.node));
    },
    heard: (told) => setNode((n) => n && told.reduce(withToldDemos, n)),
    failed: setError,
  }, [ref]);
  const edited = (changed: NodeView) => setNode((n) => (n?.id === changed.id ? { ...changed, demos: n.demos } : n));
  return { node, error, edited };
}
