// The typed REST client (@dvic/client) signed in as the admin, and the few calls tests make most.
import { ApiError, call, createApiClient, type DvicApi, type paths } from '@dvic/client';
import type { AgentConfigFile, CommandView, NodeDetailView, NodeView } from '@dvic/protocol';
import { ADMIN_PASSWORD } from './processes.js';

export { call };
export type Api = DvicApi;
type ExecBody = paths['/api/v1/nodes/{id}/exec']['post']['requestBody']['content']['application/json'];

/** Signs in with a session cookie, as the dashboard does. */
export async function signIn(baseUrl: string, password = ADMIN_PASSWORD): Promise<Api> {
  return (await session(baseUrl, password)).api;
}

/** A signed-in client and its session cookie (for a live socket of the same session). */
export async function session(baseUrl: string, password = ADMIN_PASSWORD): Promise<{ api: Api; cookie: string }> {
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
  return { api, cookie };
}

/** The status and error of a call expected to fail (throws if it succeeds). */
export async function failure(pending: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  try {
    await pending;
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, code: err.code, message: err.message };
    throw err;
  }
  throw new Error('the request succeeded');
}

const byId = (id: string) => ({ params: { path: { id } } });

export const getNode = (api: Api, ref: string): Promise<NodeDetailView> => call(api.GET('/api/v1/nodes/{id}', byId(ref))).then((r) => r.node);

export const enroll = (api: Api, name: string, labels?: Record<string, string>): Promise<{ node: NodeView; config: AgentConfigFile }> =>
  call(api.POST('/api/v1/nodes', { body: { name, ...(labels ? { labels } : {}) } }));

export const getCommand = (api: Api, id: string): Promise<CommandView> => call(api.GET('/api/v1/commands/{id}', byId(id))).then((r) => r.command);

export const runOn = (api: Api, ref: string, body: ExecBody): Promise<{ id: string; status: string }> =>
  call(api.POST('/api/v1/nodes/{id}/exec', { ...byId(ref), body }));
