/**
 * The REST API (@dvic/client, typed from the OpenAPI document) with the page's session cookie.
 * A 401 anywhere but at sign-in sends the app back to the sign-in page.
 */
import { ApiError, call, createApiClient } from '@dvic/client';

export { ApiError, call };

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Called when the session is gone (expired, logged out elsewhere, ended by an admin). */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export function sessionEnded(): void {
  for (const listener of unauthorizedListeners) listener();
}

async function fetchWithSession(request: Request): Promise<Response> {
  const response = await fetch(request);
  if (response.status === 401 && !new URL(request.url).pathname.endsWith('/auth/login')) sessionEnded();
  return response;
}

export const api = createApiClient({ baseUrl: location.origin, fetch: fetchWithSession });

/** The message to show for a failed call. */
export const errorText = (err: unknown, fallback: string): string => (err instanceof ApiError ? err.message : fallback);
