/**
 * Counts failed logins per client address in a fixed window. Successful logins are never
 * limited; once an address has failed `maxFailures` times it is refused until its window ends.
 * Memory is bounded: expired entries are dropped as they are met and at most `maxTracked` kept.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly maxTracked = 100_000,
  ) {}

  /** Milliseconds until this address may try again, or 0. */
  retryAfterMs(key: string, now = Date.now()): number {
    const entry = this.current(key, now);
    return entry && entry.count >= this.maxFailures ? entry.resetAt - now : 0;
  }

  recordFailure(key: string, now = Date.now()): void {
    const entry = this.current(key, now);
    if (entry) {
      entry.count++;
      return;
    }
    if (this.failures.size >= this.maxTracked) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(key, { count: 1, resetAt: now + this.windowMs });
  }

  recordSuccess(key: string): void {
    this.failures.delete(key);
  }

  private current(key: string, now: number) {
    const entry = this.failures.get(key);
    if (entry && entry.resetAt <= now) {
      this.failures.delete(key);
      return undefined;
    }
    return entry;
  }
}
