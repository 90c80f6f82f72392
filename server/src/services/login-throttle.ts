/** The answer to a sign-in attempt: go on (and say how it went), or wait until retryAt. */
export type Attempt =
  | { allowed: true; /** The password was right: this attempt is not held against anyone. */ succeeded: () => void }
  | { allowed: false; retryAt: number };

/**
 * Counts sign-in attempts per key (the client address, and the user name asked for) in a fixed
 * window. An attempt is counted when it starts, before the password is checked, so concurrent
 * guesses cannot outrun the count; a successful one is then taken back. Once a key reaches
 * `maxFailures` every attempt on it is refused until its window ends, the right password too.
 * A success only takes back its own attempt: it resets nobody's count.
 * Memory is bounded: expired entries are dropped as they are met and at most `maxTracked` kept.
 */
export class LoginThrottle {
  private readonly counts = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly maxTracked = 100_000,
  ) {}

  /** Starts an attempt counted against every key (all must be under the limit). */
  attempt(keys: string[], now = Date.now()): Attempt {
    const blocked = keys.map((k) => this.current(k, now)).filter((e) => e && e.count >= this.maxFailures);
    if (blocked.length) return { allowed: false, retryAt: Math.max(...blocked.map((e) => e!.resetAt)) };
    const entries = keys.map((key) => this.count(key, now));
    let taken = false;
    return {
      allowed: true,
      succeeded: () => {
        if (taken) return;
        taken = true;
        for (const entry of entries) entry.count = Math.max(0, entry.count - 1);
      },
    };
  }

  private count(key: string, now: number) {
    const entry = this.current(key, now);
    if (entry) {
      entry.count++;
      return entry;
    }
    if (this.counts.size >= this.maxTracked) this.counts.delete(this.counts.keys().next().value!);
    const created = { count: 1, resetAt: now + this.windowMs };
    this.counts.set(key, created);
    return created;
  }

  private current(key: string, now: number) {
    const entry = this.counts.get(key);
    if (entry && entry.resetAt <= now) {
      this.counts.delete(key);
      return undefined;
    }
    return entry;
  }
}

/** The keys a sign-in as this user from this address is counted under. */
export const loginKeys = (ip: string, username: string) => [`ip:${ip}`, `user:${username.toLowerCase()}`];
