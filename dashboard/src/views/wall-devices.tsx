import { useMemo } from 'preact/hooks';
import type { DeviceView } from '@dvic/protocol/shared';
import { StatusBadge } from '../components/status.js';
import { visibleDevices } from '../state/devices-store.js';
import { useDevices } from '../state/use-devices.js';

/** Devices that need someone: down or late (for the wall's problem list). */
export const deviceProblems = (devices: DeviceView[]) => devices.filter((d) => d.status === 'down' || d.status === 'late');

/**
 * The devices' tiles for wall mode (wired into views/wall.tsx by its owner): down and late first,
 * in the same tile style as nodes.
 */
export function WallDevices({ now }: { now: number }) {
  const state = useDevices();
  const tiles = useMemo(() => visibleDevices(state, '', true), [state.version]);
  if (!tiles.length) return null;
  return (
    <div class="tiles wall-devices" aria-label="Devices">
      {tiles.map((d) => (
        <article key={d.id} class={`tile device ${d.status === 'down' || d.status === 'late' ? 'down' : ''}`} aria-label={`${d.name} ${d.status}`}>
          <h2>{d.name}</h2>
          <StatusBadge status={d.status} since={d.status_since} now={now} />
          {d.last_message && <p>{d.last_message}</p>}
        </article>
      ))}
    </div>
  );
}
