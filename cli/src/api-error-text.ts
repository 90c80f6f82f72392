import { ApiError } from '@dvic/client';
import { ErrorCode } from '@dvic/protocol/shared';

/**
 * An error of the server (or no answer) as one line for stderr: the server's message, what to do
 * about it, and for a node reference several nodes match, the ids to choose from.
 */
export function apiErrorText(err: ApiError, url: string): string {
  if (err.status === 0) {
    const cause = err.cause as { code?: string; message?: string } | undefined;
    return `cannot reach ${url}: ${cause?.code ?? cause?.message ?? err.message}`;
  }
  if (err.status === 401) return `${err.message}: run dvic login`;
  const candidates = err.code === ErrorCode.ambiguous ? err.details?.candidates ?? [] : [];
  if (candidates.length) return `${err.message}; give one of: ${candidates.map((c) => `${c.id} (${c.name})`).join(', ')}`;
  return err.message;
}
