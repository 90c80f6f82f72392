import type { AlertRule, AlertSubject, DeviceView, HardwareState, LabDemo, NodeView } from '@dvic/protocol';
import { isAgentBehind } from '@dvic/protocol/shared';
import type { ScopeTarget } from './scope.js';

/** What one rule says about one node, demo or device right now. */
export interface Condition {
  /** Which alert it is, for this rule ("demo:<node id>:<name>", "disk:<node id>:/var"). */
  key: string;
  subject: AlertSubject;
  target: ScopeTarget;
  active: boolean;
  /** When it began to hold (for_s counts from there); now when unknown. */
  since: number;
  value: number | null;
  summary: string;
}

const round = (n: number) => Math.round(n * 10) / 10;

export const nodeSubject = (n: Pick<NodeView, 'id' | 'name'>): AlertSubject =>
  ({ type: 'node', node_id: n.id, node_name: n.name, demo: null, device_id: null, device_name: null });

const nodeTarget = (n: Pick<NodeView, 'id' | 'labels'>): ScopeTarget => ({ nodeId: n.id, labels: n.labels, demo: null });

type NodeLike = Pick<NodeView, 'id' | 'name' | 'labels' | 'status' | 'status_since' | 'agent_version' | 'last_seen'>;

function nodeCondition(n: NodeLike, key: string, active: boolean, value: number | null, summary: string, since: number): Condition {
  return { key: `${key}:${n.id}`, subject: nodeSubject(n), target: nodeTarget(n), active, since, value, summary };
}

/** node_offline and agent_version, from the node's status and hello. */
export function nodeConditions(rule: AlertRule, n: NodeLike, shippedVersion: string | null, now: number): Condition[] {
  if (rule.kind === 'node_offline') {
    // A node never seen (enrolled, not installed yet) is not "offline" in the sense of gone away.
    return [nodeCondition(n, 'node', n.status === 'offline' && n.last_seen !== null, null, `${n.name} is offline`, n.status_since)];
  }
  if (rule.kind === 'agent_version' && shippedVersion && n.agent_version) {
    const behind = isAgentBehind(n.agent_version, shippedVersion);
    return [nodeCondition(n, 'agent', behind, null, `${n.name} runs agent ${n.agent_version}, the server ships ${shippedVersion}`, now)];
  }
  return [];
}

/** disk_used (one alert per filesystem), memory_available and temperature (hottest sensor), from a hardware state. */
export function hardwareConditions(rule: AlertRule, n: NodeLike, hw: HardwareState, now: number): Condition[] {
  const limit = rule.threshold ?? Infinity;
  if (rule.kind === 'disk_used') {
    return hw.filesystems.filter((fs) => fs.size_bytes > 0).map((fs) => {
      const pct = round((fs.used_bytes / fs.size_bytes) * 100);
      return { ...nodeCondition(n, 'disk', pct > limit, pct, `${fs.mount} on ${n.name} is ${pct} % full`, now), key: `disk:${n.id}:${fs.mount}` };
    });
  }
  if (rule.kind === 'memory_available' && hw.memory.total_bytes > 0) {
    const pct = round((hw.memory.available_bytes / hw.memory.total_bytes) * 100);
    return [nodeCondition(n, 'memory', pct < limit, pct, `${n.name} has ${pct} % memory available`, now)];
  }
  if (rule.kind === 'temperature' && hw.temperatures.length) {
    const hottest = hw.temperatures.reduce((a, b) => (b.celsius > a.celsius ? b : a));
    const where = hottest.label ?? hottest.chip ?? hottest.sensor;
    return [nodeCondition(n, 'temp', hottest.celsius > limit, round(hottest.celsius), `${n.name} is at ${round(hottest.celsius)} °C (${where})`, now)];
  }
  return [];
}

/** Which demo a demo condition is about: the same key for every rule and every look at it. */
export const demoConditionKey = (nodeId: string, name: string): string => `demo:${nodeId}:${name}`;

/** demo_crashed, demo_down and demo_silent, from the demo's view (log_errors is counted apart). */
export function demoConditions(rule: AlertRule, d: LabDemo, node: Pick<NodeView, 'name' | 'labels'>, now: number): Condition[] {
  const base = {
    key: demoConditionKey(d.node_id, d.name), target: { nodeId: d.node_id, labels: node.labels, demo: d.name },
    subject: { type: 'demo', node_id: d.node_id, node_name: node.name, demo: d.name, device_id: null, device_name: null } as AlertSubject,
  };
  const since = d.ended_at ?? now;
  if (rule.kind === 'demo_crashed') return [{ ...base, active: d.state === 'crashed', since, value: null, summary: `${d.name} crashed on ${node.name}` }];
  if (rule.kind === 'demo_down') return [{ ...base, active: d.down, since, value: null, summary: `${d.name} is down on ${node.name}` }];
  if (rule.kind === 'demo_silent') {
    const quietSince = Math.max(d.last_line_at ?? 0, d.started_at ?? 0);
    const limitMs = (rule.threshold ?? 0) * 1000;
    return [{ ...base, active: d.state === 'running' && quietSince > 0, since: quietSince + limitMs, value: null, summary: `${d.name} on ${node.name} wrote nothing for ${rule.threshold} s` }];
  }
  return [];
}

/** device_down and device_late, from the device's status. */
export function deviceConditions(rule: AlertRule, d: DeviceView, node: Pick<NodeView, 'name'> | undefined): Condition[] {
  const want = rule.kind === 'device_down' ? 'down' : rule.kind === 'device_late' ? 'late' : null;
  if (!want) return [];
  return [{
    key: `device:${d.id}`, target: { nodeId: d.node_id, labels: d.labels, demo: null },
    subject: { type: 'device', node_id: d.node_id, node_name: node?.name ?? null, demo: null, device_id: d.id, device_name: d.name },
    active: d.status === want, since: d.status_since, value: null,
    summary: `device ${d.name} is ${want}`,
  }];
}
