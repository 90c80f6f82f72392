import type { AlertWebhook } from '@dvic/protocol';
import { duration } from '@dvic/protocol/shared';
import type { Notification, NotifyKind } from './alert-engine.js';

export type AlertMessage = AlertWebhook;
type WebhookAlert = AlertWebhook['alerts'][number];

/** How several alerts of one kind read together ("3 demos crashed on pi-hall-3"). */
const PLURALS: Partial<Record<WebhookAlert['rule']['kind'], string>> = {
  demo_crashed: 'demos crashed', demo_down: 'demos down', demo_silent: 'demos silent', log_errors: 'demos logging errors',
  node_offline: 'nodes offline', device_down: 'devices down', device_late: 'devices late', disk_used: 'disks almost full',
  temperature: 'nodes too hot', memory_available: 'nodes low on memory', agent_version: 'agents behind',
};

const PREFIX: Record<NotifyKind, string> = { firing: '', resolved: 'Resolved: ', repeat: 'Still firing: ', flapping: 'Flapping: ' };

function toWebhookAlert(n: Pick<Notification, 'alert'>, now: number): WebhookAlert {
  const { alert } = n;
  const s = alert.subject;
  return {
    id: alert.id, rule: { id: alert.rule_id, name: alert.rule_name, kind: alert.kind }, state: alert.state, severity: alert.severity,
    node: s.node_id && s.node_name !== null ? { id: s.node_id, name: s.node_name } : null, demo: s.demo,
    device: s.device_id && s.device_name !== null ? { id: s.device_id, name: s.device_name } : null,
    summary: alert.summary, value: alert.value, last_lines: alert.last_lines, started_at: alert.started_at, resolved_at: alert.resolved_at,
    duration_s: Math.max(0, Math.round(((alert.resolved_at ?? now) - alert.started_at) / 1000)),
  };
}

function title(kind: NotifyKind, alerts: WebhookAlert[]): string {
  const [first] = alerts;
  if (alerts.length === 1 && first) {
    const lasted = kind === 'resolved' ? ` (lasted ${duration(first.duration_s * 1000)})` : '';
    return `${PREFIX[kind]}${first.summary}${lasted}`;
  }
  const kinds = new Set(alerts.map((a) => a.rule.kind));
  const nodes = new Set(alerts.map((a) => a.node?.name ?? ''));
  const plural = kinds.size === 1 && first ? PLURALS[first.rule.kind] : undefined;
  const what = plural ? `${alerts.length} ${plural}` : `${alerts.length} alerts`;
  const where = nodes.size === 1 && first?.node ? ` on ${first.node.name}` : '';
  return `${PREFIX[kind]}${what}${where}${kind === 'firing' && !plural ? ' firing' : ''}`;
}

function line(kind: NotifyKind, a: WebhookAlert): string {
  const lasted = kind === 'resolved' ? `, lasted ${duration(a.duration_s * 1000)}` : kind === 'repeat' ? `, for ${duration(a.duration_s * 1000)}` : '';
  const lines = kind === 'resolved' ? [] : a.last_lines.map((l) => `    ${l}`);
  return [`• [${a.severity}] ${a.summary}${lasted}`, ...lines].join('\n');
}

/** One message for a group of notifications of one kind: the webhook body, and its title and text for chats. Pure. */
export function buildMessage<N extends Pick<Notification, 'alert'>>(kind: NotifyKind, group: N[], now: number): AlertMessage {
  const alerts = group.map((n) => toWebhookAlert(n, now));
  const head = title(kind, alerts);
  const text = alerts.length === 1 && kind === 'resolved' ? head : [head, ...alerts.map((a) => line(kind, a))].join('\n');
  return { version: 1, event: kind, title: head, text, alerts, sent_at: now };
}

/** The message a "send test" button sends. */
export function testMessage(channelName: string, now: number): AlertMessage {
  const head = `Test message from DVIC Demo Monitor to ${channelName}`;
  return { version: 1, event: 'test', title: head, text: `${head}: alerts will arrive here.`, alerts: [], sent_at: now };
}
