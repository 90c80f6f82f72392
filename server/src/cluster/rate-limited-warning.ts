import type { FastifyBaseLogger } from 'fastify';

/** How often one kind of bus warning may be written: about as often as anyone reads a log. */
export const WARNING_INTERVAL_MS = 5000;

export type Warn = (fields?: Record<string, unknown>) => void;

/**
 * A warning that can fire for every event (thousands a second when NATS is away or slow) written
 * at most once per interval: the first at once, then, at the end of each interval in which it
 * fired again, one line with how many times (`count`) and the fields of the latest. Without this a
 * bus outage fills the disk with the same line (60 MB in 5 minutes at 20,000 agents).
 */
export function rateLimitedWarning(log: FastifyBaseLogger, message: string, intervalMs = WARNING_INTERVAL_MS): Warn {
  let quietUntil = 0;
  let count = 0;
  let latest: Record<string, unknown> = {};
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    timer = undefined;
    if (!count) return;
    log.warn({ ...latest, count }, message);
    count = 0;
    quietUntil = Date.now() + intervalMs;
  };

  return (fields = {}) => {
    if (Date.now() >= quietUntil && !timer) {
      log.warn({ ...fields, count: 1 }, message);
      quietUntil = Date.now() + intervalMs;
      return;
    }
    count++;
    latest = fields;
    // The timer does not keep the process alive: a count lost at exit is a warning no one reads.
    timer ??= setTimeout(flush, Math.max(0, quietUntil - Date.now())).unref();
  };
}
