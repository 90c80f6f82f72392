import { badgeCount } from '../state/alerts-store.js';
import { useAlerts } from '../state/use-alerts.js';

/** The number of firing alerts nobody acknowledged or muted, beside the Alerts link (on every page, the overview included). */
export function AlertBadge() {
  const count = badgeCount(useAlerts());
  return count ? <span class="alert-badge" data-testid="alert-badge" aria-label={`${count} alerts firing`}>{count}</span> : null;
}
