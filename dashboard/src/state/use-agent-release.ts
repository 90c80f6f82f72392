import { useEffect, useState } from 'preact/hooks';
import { api, call } from '../api/client.js';

let shipped: Promise<string | null> | undefined;

/** The agent version this server ships (fetched once per page load), null until known. */
export function useShippedAgent(): string | null {
  const [version, setVersion] = useState<string | null>(null);
  useEffect(() => {
    shipped ??= call(api.GET('/api/v1/agent-release')).then((r) => r.agent.version).catch(() => { shipped = undefined; return null; });
    void shipped.then(setVersion);
  }, []);
  return version;
}
