// The typed REST client (@dvic/client) signed in as the admin, and the few calls tests make most.
import { call, createApiClient, type DvicApi, type paths } from '@dvic/client';
import type { AgentConfigFile, CommandView, NodeDetailView, NodeView } from '@dvic/protocol';
import { ADMIN_PASSWORD } from './processes.js';

export { call };
export type Api = DvicApi;
type ExecBody = paths['/api/v1/nodes/{id}/exec']['post']['requestBody']['content']['application/json'];

/** Signs in with a session cookie, as the dashboard does. */
export async function signIn(baseUrl: string, password = ADMIN_PASSWORD): Promise<Api> {
  let cookie = '';
  const api = createApiClient({
    baseUrl,
    fetch: (request) => {
      if (cookie) request.headers.set('cookie', cookie);
      return fetch(request);
    },
  });
  await call(api.POST('/api/v1/auth/login', { body: { username: 'admin', password } }).then((result) => {
    cookie = result.response.headers.get('set-cookie')?.split(';')[0] ?? '';
    return result;
  }));
  return api;
}

const byId = (id: string) => ({ params: { path: { id } } });

export const getNode = (api: Api, ref: string): Promise<NodeDetailView> => call(api.GET('/api/v1/nodes/{id}', byId(ref))).then((r) => r.node);

export const enroll = (api: Api, name: string, labels?: Record<string, string>): Promise<{ node: NodeView; config: AgentConfigFile }> =>
  call(api.POST('/api/v1/nodes', { body: { name, ...(labels ? { labels } : {}) } }));

export const getCommand = (api: Api, id: string): Promise<CommandView> => call(api.GET('/api/v1/commands/{id}', byId(id))).then((r) => r.command);

export const runOn = (api: Api, ref: string, body: ExecBody): Promise<{ id: string; status: string }> =>
  call(api.POST('/api/v1/nodes/{id}/exec', { ...byId(ref), body }));
