import type { AlertPolicy } from './alert-policy.js';
import type { AlertConfig } from './alert-config.js';
import type { Notification, NotifyKind } from './alert-engine.js';
import type { ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { Deliveries } from './deliveries.js';
import { buildMessage } from './message.js';

interface Group {
  /** The latest notification per alert (a flap or a quick recovery replaces what was not sent yet). */
  latest: Map<string, Notification>;
  wait: NodeJS.Timeout;
  window: NodeJS.Timeout;
}

const ORDER: NotifyKind[] = ['firing', 'flapping', 'repeat', 'resolved'];

/**
 * Groups notifications per channel: a group goes out once nothing joined it for groupWaitMs, at the
 * latest groupWindowMs after it opened, as one message per kind ("3 demos crashed on pi-hall-3").
 */
export class Notifier {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly config: AlertConfig, private readonly deliveries: Deliveries, private readonly policy: AlertPolicy) {}

  add(n: Notification): void {
    for (const channel of this.config.channelsOf(n.rule)) {
      let group = this.groups.get(channel.id);
      if (!group) {
        const window = setTimeout(() => this.flush(channel.id), this.policy.groupWindowMs);
        group = { latest: new Map(), wait: window, window };
        this.groups.set(channel.id, group);
      }
      group.latest.set(`${n.rule.id}|${n.key}`, n);
      if (group.wait !== group.window) clearTimeout(group.wait);
      group.wait = setTimeout(() => this.flush(channel.id), this.policy.groupWaitMs);
    }
  }

  stop(): void {
    for (const group of this.groups.values()) {
      clearTimeout(group.wait);
      clearTimeout(group.window);
    }
    this.groups.clear();
  }

  private flush(channelId: string): void {
    const group = this.groups.get(channelId);
    if (!group) return;
    this.groups.delete(channelId);
    clearTimeout(group.wait);
    clearTimeout(group.window);
    const channel = this.config.listChannels().find((c) => c.id === channelId);
    if (!channel?.enabled) return;
    void this.deliverGroup(channel, [...group.latest.values()], Date.now());
  }

  /** One message per kind, in ORDER: each stored before it is sent (Deliveries), one after the other. */
  private async deliverGroup(channel: ChannelRecord, notifications: Notification[], now: number): Promise<void> {
    for (const kind of ORDER) {
      const items = notifications.filter((n) => n.kind === kind);
      if (!items.length) continue;
      try {
        await this.deliveries.deliver(channel, buildMessage(kind, items, now), items.map((n) => n.alert.id));
      } catch (err) {
        this.deliveries.report(err, `a ${kind} message to channel ${channel.name}`);
      }
    }
  }
}
