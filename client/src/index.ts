/**
 * The typed client of the DVIC REST API, used by the dashboard and the CLI. Every route, with its
 * parameters, body and answer, comes from client/src/generated/openapi.ts, which is generated from
 * docs/openapi.json, itself generated from the server's route schemas and the protocol schemas.
 *
 *     const api = createApiClient({ baseUrl: 'http://localhost:8787', token });
 *     const { nodes } = await call(api.GET('/api/v1/nodes'));
 */
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from './generated/openapi.js';

export type { components, paths };
export type Schemas = components['schemas'];
export type DvicApi = Client<paths>;

type ErrorDetails = Schemas['ErrorBody']['error'];

/** An error answer (or no answer) from the server, with its stable code (@dvic/protocol ErrorCode). */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: ErrorDetails | null = null, options?: ErrorOptions) {
    super(message, options);
  }
}

export interface ApiClientOptions {
  /** The server's URL; '' for the page's own origin (the dashboard). */
  baseUrl: string;
  /** An API token (Authorization: Bearer); without it the browser's session cookie is used. */
  token?: string | null;
  fetch?: (input: Request) => Promise<Response>;
}

/**
 * State-changing requests always carry a JSON body (`{}` when the route takes none): the server
 * refuses any other content type there, which a cross-site form cannot send (CSRF).
 */
const jsonBodies: Middleware = {
  onRequest({ request }) {
    if (request.method === 'GET' || request.method === 'HEAD' || request.body !== null) return undefined;
    const headers = new Headers(request.headers);
    headers.set('content-type', 'application/json');
    return new Request(request, { body: '{}', headers });
  },
};

export function createApiClient(options: ApiClientOptions): DvicApi {
  const client = createClient<paths>({
    baseUrl: options.baseUrl,
    credentials: 'same-origin',
    headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  client.use(jsonBodies);
  return client;
}

/** The answer of a call, or an ApiError with the server's code and message (status 0: unreachable). */
export async function call<T>(pending: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await pending;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new ApiError(0, 'network', `the server cannot be reached (${cause?.code ?? cause?.message ?? (err as Error).message})`, null, { cause: cause ?? err });
  }
  const { data, error, response } = result;
  if (response.ok) return data as T;
  const details = (error as { error?: ErrorDetails } | undefined)?.error;
  throw new ApiError(response.status, details?.code ?? 'http_error', details?.message ?? `HTTP ${response.status}`, details ?? null);
}

/**
 * POST /api/v1/artifacts: the one route whose body is raw bytes (application/octet-stream,
 * streamed: give a file's stream, a Blob or bytes), so it is called without the typed client.
 */
export async function uploadArtifact(
  options: ApiClientOptions & { cookie?: string },
  query: { name: string; version: string },
  body: BodyInit,
  size?: number,
): Promise<Schemas['Artifact']> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.cookie) headers.cookie = options.cookie;
  if (size !== undefined) headers['content-length'] = String(size);
  const url = `${options.baseUrl}/api/v1/artifacts?${new URLSearchParams(query)}`;
  const init = { method: 'POST', headers, body, credentials: 'same-origin', duplex: 'half' } as RequestInit;
  return call<{ artifact: Schemas['Artifact'] }>((async () => {
    const response = await (options.fetch ?? fetch)(new Request(url, init));
    const answer: unknown = await response.json().catch(() => undefined);
    return response.ok ? { data: answer as { artifact: Schemas['Artifact'] }, response } : { error: answer, response };
  })()).then((r) => r.artifact);
}
