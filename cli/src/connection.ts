import { createApiClient, type DvicApi } from '@dvic/client';
import type { StoredConfig } from './config-store.js';

/** A server and the token to use there: the typed REST client, and what a WebSocket needs. */
export interface Connection {
  url: string;
  api: DvicApi;
  authHeaders: Record<string, string>;
  /** The WebSocket URL of a path on this server. */
  wsUrl(path: string): string;
}

export function connect(config: Pick<StoredConfig, 'url' | 'token'>): Connection {
  const authHeaders: Record<string, string> = config.token ? { authorization: `Bearer ${config.token}` } : {};
  return {
    url: config.url,
    api: createApiClient({ baseUrl: config.url, token: config.token }),
    authHeaders,
    wsUrl: (path) => config.url.replace(/^http/, 'ws') + path,
  };
}
