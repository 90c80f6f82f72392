// Errors per minute of each demo over the last half hour, worked out from the error counts that
// the demos list and its live updates carry: no extra request, and nothing kept per line.
import type { LabDemo } from '@dvic/protocol/shared';

const MINUTE = 60_000;
export const ERROR_RATE_MINUTES = 30;

interface Track {
  /** The error count last seen, to take differences from. */
  count: number;
  /** Errors per minute, keyed by the minute (ms since the epoch / 60,000). */
  perMinute: Map<number, number>;
}

/** Keeps, per demo, how many errors came in each of the last minutes while the page is open. */
export class ErrorRateHistory {
  private readonly tracks = new Map<string, Track>();

  /** Takes the current counts; a demo seen for the first time starts from its count. */
  record(demos: Iterable<LabDemo>, now: number): void {
    const minute = Math.floor(now / MINUTE);
    for (const d of demos) {
      const track = this.tracks.get(d.id);
      if (!track) {
        this.tracks.set(d.id, { count: d.error_count, perMinute: new Map() });
        continue;
      }
      // A lower count means runs were forgotten, not errors taken back.
      const added = Math.max(0, d.error_count - track.count);
      track.count = d.error_count;
      if (added) track.perMinute.set(minute, (track.perMinute.get(minute) ?? 0) + added);
      for (const m of track.perMinute.keys()) if (m <= minute - ERROR_RATE_MINUTES) track.perMinute.delete(m);
    }
  }

  /** Errors in each of the last ERROR_RATE_MINUTES minutes, oldest first (zeros before anything was seen). */
  rates(id: string, now: number): number[] {
    const minute = Math.floor(now / MINUTE);
    const perMinute = this.tracks.get(id)?.perMinute;
    return Array.from({ length: ERROR_RATE_MINUTES }, (_, i) => perMinute?.get(minute - ERROR_RATE_MINUTES + 1 + i) ?? 0);
  }
}
