import type { AlertRule } from '@dvic/protocol';

export type RuleKind = AlertRule['kind'];
export type SubjectType = 'node' | 'demo' | 'device';

/** What each kind watches and what its threshold means (null: it has none). */
export const RULE_KINDS: Record<RuleKind, { subject: SubjectType; threshold: string | null }> = {
  node_offline: { subject: 'node', threshold: null },
  agent_version: { subject: 'node', threshold: null },
  disk_used: { subject: 'node', threshold: '% used' },
  memory_available: { subject: 'node', threshold: '% available' },
  temperature: { subject: 'node', threshold: '°C' },
  demo_crashed: { subject: 'demo', threshold: null },
  demo_down: { subject: 'demo', threshold: null },
  demo_silent: { subject: 'demo', threshold: 's without a line' },
  log_errors: { subject: 'demo', threshold: 'ERROR/FATAL lines per minute' },
  device_down: { subject: 'device', threshold: null },
  device_late: { subject: 'device', threshold: null },
};

export const DEFAULT_REPEAT_S = 4 * 3600;

type DefaultRule = Pick<AlertRule, 'name' | 'kind' | 'threshold' | 'for_s' | 'severity'>;

/** The rules a fresh install starts with (editable; they notify every channel). */
export const DEFAULT_RULES: DefaultRule[] = [
  { name: 'Node offline', kind: 'node_offline', threshold: null, for_s: 60, severity: 'critical' },
  { name: 'Demo crashed', kind: 'demo_crashed', threshold: null, for_s: 0, severity: 'critical' },
  { name: 'Expected demo down', kind: 'demo_down', threshold: null, for_s: 30, severity: 'critical' },
  { name: 'Device down', kind: 'device_down', threshold: null, for_s: 0, severity: 'warning' },
  { name: 'Disk almost full', kind: 'disk_used', threshold: 90, for_s: 300, severity: 'warning' },
  { name: 'Too hot', kind: 'temperature', threshold: 85, for_s: 60, severity: 'warning' },
];

/** A rule needs a threshold exactly when its kind has one. */
export function thresholdProblem(kind: RuleKind, threshold: number | null): string | null {
  const unit = RULE_KINDS[kind].threshold;
  if (unit && threshold === null) return `a ${kind} rule needs a threshold (${unit})`;
  if (!unit && threshold !== null) return `a ${kind} rule has no threshold`;
  return null;
}
