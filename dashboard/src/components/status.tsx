import { duration } from '@dvic/protocol/shared';

const ICON = { online: '●', offline: '■', revoked: '✕', alive: '●', dead: '■', up: '●', late: '◆', down: '■', new: '○', paused: '‖' } as const;

/** Status as a word and a shape, coloured as a third cue: readable without colour. */
export function StatusBadge({ status, since, now }: { status: keyof typeof ICON; since?: number; now?: number }) {
  return (
    <span class={`status status-${status}`}>
      <span aria-hidden="true">{ICON[status]}</span> {status}
      {since !== undefined && now !== undefined && <span class="muted"> {duration(now - since)}</span>}
    </span>
  );
}
