import { ErrorCode } from '@dvic/protocol/shared';
import { ApiError } from '../api/client.js';
import { onLink } from '../router.js';

/**
 * A failed call, in words. A node reference several nodes match (409 ambiguous) lists the nodes
 * the server named, each a link, so the user picks one.
 */
export function ErrorNotice({ error, fallback }: { error: unknown; fallback: string }) {
  if (!error) return null;
  const candidates = error instanceof ApiError && error.code === ErrorCode.ambiguous ? error.details?.candidates ?? [] : [];
  return (
    <div class="error" role="alert">
      <p>{error instanceof ApiError ? error.message : fallback}</p>
      {candidates.length > 0 && (
        <ul class="candidates" aria-label="Matching nodes">
          {candidates.map((c) => (
            <li key={c.id}><a href={`/nodes/${c.id}`} onClick={(e) => onLink(e, `/nodes/${c.id}`)}>{c.name}</a> <code>{c.id}</code></li>
          ))}
        </ul>
      )}
    </div>
  );
}
