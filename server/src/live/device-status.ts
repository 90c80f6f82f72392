import type { DeviceDetailView, DevicePingView, DeviceView } from '@dvic/protocol';

export type DeviceStatus = DeviceView['status'];
export type PingKind = DevicePingView['kind'];
export type Transition = DeviceDetailView['transitions'][number];

/** What the state machine needs of a device. */
export interface Watched {
  status: DeviceStatus;
  periodS: number;
  graceS: number;
  /** The last ok or fail ping: the period and grace count from here. */
  windowFrom: number | null;
}

/**
 * The status a ping leaves: ok -> up, fail -> down (whatever came before, paused included: a
 * ping resumes a paused device, as Healthchecks does); start and log change nothing.
 */
export function statusAfterPing(current: DeviceStatus, kind: PingKind): DeviceStatus {
  if (kind === 'ok') return 'up';
  if (kind === 'fail') return 'down';
  return current;
}

/**
 * The changes time alone makes by `now`, in order, each at the moment it became due:
 * up -> late once the period has passed since the last ping, late -> down once the grace has too.
 * new, down and paused devices wait for a ping (or a resume).
 */
export function dueTransitions(device: Watched, now: number): Transition[] {
  if (device.windowFrom === null) return [];
  const lateAt = device.windowFrom + device.periodS * 1000;
  const downAt = lateAt + device.graceS * 1000;
  const out: Transition[] = [];
  let status = device.status;
  if (status === 'up' && now >= lateAt) {
    out.push({ at: lateAt, from: 'up', to: 'late', reason: `no ping for ${device.periodS} s (its period)` });
    status = 'late';
  }
  if (status === 'late' && now >= downAt) {
    out.push({ at: downAt, from: 'late', to: 'down', reason: `no ping for ${device.periodS + device.graceS} s (period + grace)` });
  }
  return out;
}

/** When the next change is due (for a caller that wants to sleep until then), or null. */
export function nextDue(device: Watched): number | null {
  if (device.windowFrom === null) return null;
  const lateAt = device.windowFrom + device.periodS * 1000;
  if (device.status === 'up') return lateAt;
  if (device.status === 'late') return lateAt + device.graceS * 1000;
  return null;
}

const COUNTED: Partial<Record<DeviceStatus, 'up' | 'down'>> = { up: 'up', late: 'up', down: 'down' };

/**
 * % of [from, to] the device was up or late, over the time it was watched (new and paused do
 * not count); null when it was never watched in that window. `changes` are oldest first;
 * `before` is the status at `from`.
 */
export function uptimePercent(before: DeviceStatus, changes: Pick<Transition, 'at' | 'to'>[], from: number, to: number): number | null {
  let up = 0;
  let watched = 0;
  let status = before;
  let at = from;
  const add = (until: number) => {
    const span = Math.max(0, until - at);
    const counted = COUNTED[status];
    if (counted) watched += span;
    if (counted === 'up') up += span;
  };
  for (const change of changes) {
    if (change.at <= from) { status = change.to; continue; }
    if (change.at > to) break;
    add(change.at);
    status = change.to;
    at = change.at;
  }
  add(to);
  return watched === 0 ? null : Math.round((up / watched) * 10000) / 100;
}
