import type { AlertPolicy } from './alert-policy.js';
import type { AlertConfig } from './alert-config.js';
import type { Notification, NotifyKind } from './alert-engine.js';
import type { Sql } from '../db/sql.js';
import type { ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { Deliveries } from './deliveries.js';
import { buildMessage } from './message.js';

interface Group {
  /** The latest notification per alert (a flap or a quick recovery replaces what was not sent yet). */
  latest: Map<string, Notification>;
  /** The key of each latest notification that came from the leader's outbox. */
  keyOf: Map<Notification, string>;
  /** Every outbox key that joined the group, replaced ones too: all are claimed when it is stored. */
  keys: Set<string>;
  /** Told whether the group's deliveries were stored (false: dropped or not stored). */
  settle: ((stored: boolean) => void)[];
  wait: NodeJS.Timeout;
  window: NodeJS.Timeout;
}

/**
 * Claims outbox keys for one channel in the open transaction (fenced by the lease: it throws when
 * this replica does not lead); answers the keys no leader claimed for that channel before.
 */
export type ClaimKeys = (keys: string[], channelId: string) => Promise<string[]>;

const ORDER: NotifyKind[] = ['firing', 'flapping', 'repeat', 'resolved'];

/**
 * Groups notifications per channel: a group goes out once nothing joined it for groupWaitMs, at the
 * latest groupWindowMs after it opened, as one message per kind ("3 demos crashed on pi-hall-3").
 * add() answers once the notification's deliveries are stored (pending, in alert_deliveries), so
 * that the leader's outbox marks an entry sent only when a restart would resume its delivery.
 *
 * Fed by the leader's outbox (a key with each notification, claimWith set), a group is stored in
 * one transaction with the claim of its keys for its channel: a leader that dies before marking
 * an entry sent, or is deposed meanwhile, leaves claims that keep the next one from telling that
 * channel again, and a deposed leader stores (and sends) nothing.
 */
export class Notifier {
  private readonly groups = new Map<string, Group>();
  private readonly flushing = new Set<Promise<void>>();
  private claim: ClaimKeys | null = null;

  constructor(
    private readonly config: AlertConfig, private readonly deliveries: Deliveries, private readonly policy: AlertPolicy,
    private readonly sql: Pick<Sql, 'transaction'>,
  ) {}

  /** Set on a shared database (the outbox's claims); null: each delivery stored on its own. */
  claimWith(claim: ClaimKeys | null): void {
    this.claim = claim;
  }

  /** Resolves true once every channel's delivery of it is stored; false when dropped (stop) or not stored. Never rejects. */
  async add(n: Notification, key?: string): Promise<boolean> {
    const stored = this.config.channelsOf(n.rule).map((channel) => new Promise<boolean>((settle) => {
      const group = this.groupOf(channel.id);
      group.latest.set(`${n.rule.id}|${n.key}`, n);
      if (key !== undefined) {
        group.keyOf.set(n, key);
        group.keys.add(key);
      }
      group.settle.push(settle);
      if (group.wait !== group.window) clearTimeout(group.wait);
      group.wait = setTimeout(() => this.flush(channel.id), this.policy.groupWaitMs);
    }));
    return (await Promise.all(stored)).every(Boolean);
  }

  private groupOf(channelId: string): Group {
    let group = this.groups.get(channelId);
    if (!group) {
      const window = setTimeout(() => this.flush(channelId), this.policy.groupWindowMs);
      group = { latest: new Map(), keyOf: new Map(), keys: new Set(), settle: [], wait: window, window };
      this.groups.set(channelId, group);
    }
    return group;
  }

  /**
   * Drops the groups not sent yet (a leader stepping down: the next one sends them from its
   * outbox) and waits for the ones being stored: once it resolves, nothing more is stored here.
   */
  async stop(): Promise<void> {
    for (const group of this.groups.values()) {
      clearTimeout(group.wait);
      clearTimeout(group.window);
      for (const settle of group.settle) settle(false);
    }
    this.groups.clear();
    await Promise.all(this.flushing);
  }

  private flush(channelId: string): void {
    const group = this.groups.get(channelId);
    if (!group) return;
    this.groups.delete(channelId);
    clearTimeout(group.wait);
    clearTimeout(group.window);
    const channel = this.config.listChannels().find((c) => c.id === channelId);
    const stored = channel?.enabled ? this.store(channel, group) : Promise.resolve(true);
    const done = stored.then((ok) => { for (const settle of group.settle) settle(ok); });
    this.flushing.add(done);
    void done.finally(() => this.flushing.delete(done));
  }

  /** The group's deliveries stored: with its claims in one transaction when fed by the outbox. Whether they were. */
  private async store(channel: ChannelRecord, group: Group): Promise<boolean> {
    const claim = this.claim;
    const notifications = [...group.latest.values()];
    const now = Date.now();
    if (!claim || !group.keys.size) return this.deliverGroup(channel, notifications, now, false);
    try {
      return await this.sql.transaction(async () => {
        const fresh = new Set(await claim([...group.keys], channel.id));
        const unclaimed = notifications.filter((n) => !group.keyOf.has(n) || fresh.has(group.keyOf.get(n)!));
        if (!(await this.deliverGroup(channel, unclaimed, now, true))) throw new Error('a delivery of the group could not be stored');
        return true;
      });
    } catch (err) {
      this.deliveries.report(err, `the grouped notifications to channel ${channel.name}`);
      return false;
    }
  }

  /** One message per kind, in ORDER: each stored before it is sent (Deliveries), one after the other. Whether all were stored. */
  private async deliverGroup(channel: ChannelRecord, notifications: Notification[], now: number, inTransaction: boolean): Promise<boolean> {
    let stored = true;
    for (const kind of ORDER) {
      const items = notifications.filter((n) => n.kind === kind);
      if (!items.length) continue;
      try {
        await this.deliveries.deliver(channel, buildMessage(kind, items, now), items.map((n) => n.alert.id), { inTransaction, leaderOnly: true });
      } catch (err) {
        stored = false;
        if (inTransaction) throw err;
        this.deliveries.report(err, `a ${kind} message to channel ${channel.name}`);
      }
    }
    return stored;
  }
}
