import type { AlertMute, AlertSubject } from '@dvic/protocol';

/** Whether a mute (or maintenance window) covers an alert of this rule and subject at this time. Pure. */
export function muteCovers(m: AlertMute, ruleId: string, s: AlertSubject, now: number): boolean {
  if (now < m.starts_at || now >= m.ends_at) return false;
  if (m.rule_id !== null && m.rule_id !== ruleId) return false;
  if (m.node_id !== null && m.node_id !== s.node_id) return false;
  if (m.demo !== null && m.demo !== s.demo) return false;
  if (m.device_id !== null && m.device_id !== s.device_id) return false;
  return true;
}
