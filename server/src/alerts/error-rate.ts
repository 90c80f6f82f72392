/** The sliding window ERROR/FATAL lines are counted over (log_errors: lines per minute). */
export const ERROR_WINDOW_MS = 60_000;

/**
 * ERROR/FATAL lines per demo over the last minute, from the demo's growing error counter (each
 * update adds what it grew by). Pure apart from the time given.
 */
export class ErrorRate {
  private readonly counters = new Map<string, number>();
  private readonly windows = new Map<string, { at: number; n: number }[]>();

  /** Takes the demo's error counter; answers the lines of the last minute. */
  observe(key: string, errorCount: number, now: number): number {
    const before = this.counters.get(key);
    this.counters.set(key, errorCount);
    const grew = before === undefined ? 0 : errorCount - before;
    if (grew > 0) {
      let window = this.windows.get(key);
      if (!window) this.windows.set(key, (window = []));
      window.push({ at: now, n: grew });
    }
    return this.rate(key, now);
  }

  rate(key: string, now: number): number {
    const window = this.windows.get(key);
    if (!window) return 0;
    while (window.length && window[0]!.at <= now - ERROR_WINDOW_MS) window.shift();
    if (!window.length) this.windows.delete(key);
    return window.reduce((sum, e) => sum + e.n, 0);
  }

  /** When the oldest counted lines leave the window (the rate can only fall then), or null. */
  nextDrop(key: string): number | null {
    const first = this.windows.get(key)?.[0];
    return first ? first.at + ERROR_WINDOW_MS : null;
  }

  forget(key: string): void {
    this.counters.delete(key);
    this.windows.delete(key);
  }
}
