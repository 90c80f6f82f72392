/** How alerts are grouped, retried and judged flapping (DVIC_ALERT_* settings, docs/alerts.md). */
export interface AlertPolicy {
  /** A group is sent once no new alert joined it for this long... */
  groupWaitMs: number;
  /** ...or at the latest this long after its first alert (the grouping window). */
  groupWindowMs: number;
  /** More than this many state changes of one alert within flapWindowMs: flapping. */
  flapChanges: number;
  flapWindowMs: number;
  /** A flapping alert is stable again after this long without a change. */
  flapStableMs: number;
  /** Delivery attempts per message, and the first wait between them (doubled each time). */
  deliveryAttempts: number;
  retryBaseMs: number;
  /** One attempt waits at most this long for an answer. */
  deliveryTimeoutMs: number;
}

export const DEFAULT_ALERT_POLICY: AlertPolicy = {
  groupWaitMs: 1000, groupWindowMs: 10_000, flapChanges: 6, flapWindowMs: 10 * 60_000, flapStableMs: 10 * 60_000,
  deliveryAttempts: 5, retryBaseMs: 2000, deliveryTimeoutMs: 10_000,
};
