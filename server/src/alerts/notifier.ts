import type { AlertPolicy } from './alert-policy.js';
import type { AlertConfig } from './alert-config.js';
import type { Notification, NotifyKind } from './alert-engine.js';
import type { ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { Sql } from '../db/sql.js';
import type { Deliveries } from './deliveries.js';
import { buildMessage } from './message.js';

/** A notification the leader's outbox hands over: its entry (one channel's), to mark sent with its delivery. */
export interface OutboxEntry {
  key: string;
  channelId: string;
}

/** Marks entries sent inside the caller's transaction (the leader's outbox; fenced by its lease). */
export type MarkEntriesSent = (sql: Pick<Sql, 'get' | 'run'>, keys: string[]) => Promise<void>;

interface Group {
  /** The latest notification per alert (a flap or a quick recovery replaces what was not sent yet). */
  latest: Map<string, Notification>;
  /** The outbox entries that joined it, replaced ones too: all are settled by its deliveries. */
  entries: string[];
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
 *
 * With the leader's outbox (markEntriesWith), a group's deliveries are stored in one transaction
 * with its entries marked sent: a leader that dies after storing them leaves nothing for the next
 * one to tell again (it resumes the pending deliveries instead), and one that dies before leaves
 * the entries unsent and nothing stored.
 */
export class Notifier {
  private readonly groups = new Map<string, Group>();
  private markSent: MarkEntriesSent | null = null;

  constructor(
    private readonly config: AlertConfig, private readonly deliveries: Deliveries, private readonly policy: AlertPolicy,
    private readonly sql: Pick<Sql, 'transaction' | 'get' | 'run'>,
  ) {}

  /** How entries are marked sent with their deliveries (null: no outbox, as on a single server). */
  markEntriesWith(markSent: MarkEntriesSent | null): void {
    this.markSent = markSent;
  }

  /**
   * Resolves true once every channel's delivery of it is stored (the entry's channel only, for an
   * outbox entry); false when dropped (stop) or not stored. Never rejects.
   */
  async add(n: Notification, entry?: OutboxEntry): Promise<boolean> {
    const channels = this.config.channelsOf(n.rule).filter((c) => !entry || c.id === entry.channelId);
    const stored = channels.map((channel) => new Promise<boolean>((settle) => {
      let group = this.groups.get(channel.id);
      if (!group) {
        const window = setTimeout(() => this.flush(channel.id), this.policy.groupWindowMs);
        group = { latest: new Map(), entries: [], settle: [], wait: window, window };
        this.groups.set(channel.id, group);
      }
      group.latest.set(`${n.rule.id}|${n.key}`, n);
      if (entry) group.entries.push(entry.key);
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
    const stored = channel?.enabled ? this.deliverWithEntries(channel, group) : Promise.resolve(true);
    void stored.then((ok) => { for (const settle of group.settle) settle(ok); });
  }

  /** The group's messages, and its outbox entries marked sent, in one transaction (or the messages alone without an outbox). */
  private async deliverWithEntries(channel: ChannelRecord, group: Group): Promise<boolean> {
    const notifications = [...group.latest.values()];
    const markSent = this.markSent;
    if (!markSent || !group.entries.length) return this.deliverGroup(channel, notifications, Date.now());
    try {
      return await this.sql.transaction(async () => {
        await this.deliverGroup(channel, notifications, Date.now(), { inTransaction: true });
        await markSent(this.sql, group.entries);
        return true;
      });
    } catch (err) {
      // Nothing of the group is stored and its entries stay unsent: the relay hands them over again.
      this.deliveries.report(err, `the alert messages to channel ${channel.name}`);
      return false;
    }
  }

  /**
   * One message per kind, in ORDER: each stored before it is sent (Deliveries), one after the
   * other. Whether all were stored; in a transaction, the first failure throws (nothing is kept).
   */
  private async deliverGroup(channel: ChannelRecord, notifications: Notification[], now: number, options: { inTransaction?: boolean } = {}): Promise<boolean> {
    let stored = true;
    for (const kind of ORDER) {
      const items = notifications.filter((n) => n.kind === kind);
      if (!items.length) continue;
      try {
        await this.deliveries.deliver(channel, buildMessage(kind, items, now), items.map((n) => n.alert.id), options);
      } catch (err) {
        if (options.inTransaction) throw err;
        stored = false;
        this.deliveries.report(err, `a ${kind} message to channel ${channel.name}`);
      }
    }
    return stored;
  }
}
