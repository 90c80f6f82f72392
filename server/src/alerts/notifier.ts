import type { AlertPolicy } from './alert-policy.js';
import type { AlertConfig } from './alert-config.js';
import type { Notification, NotifyKind } from './alert-engine.js';
import type { ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { Deliveries } from './deliveries.js';
import { buildMessage } from './message.js';

interface Group {
  /** The latest notification per alert (a flap or a quick recovery replaces what was not sent yet). */
  latest: Map<string, Notification>;
  /** Told whether the group's deliveries were stored (false: dropped or not stored). */
  settle: ((stored: boolean) => void)[];
  wait: NodeJS.Timeout;
  window: NodeJS.Timeout;
}

const ORDER: NotifyKind[] = ['firing', 'flapping', 'repeat', 'resolved'];

/**
 * Groups notifications per channel: a group goes out once nothing joined it for groupWaitMs, at the
 * latest groupWindowMs after it opened, as one message per kind ("3 demos crashed on pi-hall-3").
 * add() answers once the notification's deliveries are stored (pending, in alert_deliveries), so
 * that the leader's outbox marks an entry sent only when a restart would resume its delivery.
 */
export class Notifier {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly config: AlertConfig, private readonly deliveries: Deliveries, private readonly policy: AlertPolicy) {}

  /** Resolves true once every channel's delivery of it is stored; false when dropped (stop) or not stored. Never rejects. */
  async add(n: Notification): Promise<boolean> {
    const stored = this.config.channelsOf(n.rule).map((channel) => new Promise<boolean>((settle) => {
      let group = this.groups.get(channel.id);
      if (!group) {
        const window = setTimeout(() => this.flush(channel.id), this.policy.groupWindowMs);
        group = { latest: new Map(), settle: [], wait: window, window };
        this.groups.set(channel.id, group);
      }
      group.latest.set(`${n.rule.id}|${n.key}`, n);
      group.settle.push(settle);
      if (group.wait !== group.window) clearTimeout(group.wait);
      group.wait = setTimeout(() => this.flush(channel.id), this.policy.groupWaitMs);
    }));
    return (await Promise.all(stored)).every(Boolean);
  }

  /** Drops the groups not sent yet (a leader stepping down: the next one sends them from its outbox). */
  stop(): void {
    for (const group of this.groups.values()) {
      clearTimeout(group.wait);
      clearTimeout(group.window);
      for (const settle of group.settle) settle(false);
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
    const stored = channel?.enabled ? this.deliverGroup(channel, [...group.latest.values()], Date.now()) : Promise.resolve(true);
    void stored.then((ok) => { for (const settle of group.settle) settle(ok); });
  }

  /** One message per kind, in ORDER: each stored before it is sent (Deliveries), one after the other. Whether all were stored. */
  private async deliverGroup(channel: ChannelRecord, notifications: Notification[], now: number): Promise<boolean> {
    let stored = true;
    for (const kind of ORDER) {
      const items = notifications.filter((n) => n.kind === kind);
      if (!items.length) continue;
      try {
        await this.deliveries.deliver(channel, buildMessage(kind, items, now), items.map((n) => n.alert.id));
      } catch (err) {
        stored = false;
        this.deliveries.report(err, `a ${kind} message to channel ${channel.name}`);
      }
    }
    return stored;
  }
}
