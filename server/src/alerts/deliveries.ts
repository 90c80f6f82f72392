import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AlertDelivery } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';
import type { AlertChannelsRepository, ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { WriteScheduler } from '../services/deferred-writes.js';
import { reportQuietly } from '../services/latest-writes.js';
import type { AlertPolicy } from './alert-policy.js';
import { DeliveryError, sendTo } from './channels/index.js';
import type { AlertMessage } from './message.js';

/** Deliveries waiting for an attempt at most: past it, new ones fail at once (a receiver down for long must not pile up memory). */
const MAX_PENDING = 1000;
const ERROR_CHARS = 500;

type Send = (channel: ChannelRecord, message: AlertMessage, timeoutMs: number) => Promise<number>;
/** What a resumed delivery says now: its message, or why it goes no more (pending-deliveries.ts). */
export type WhatItSaysNow = (delivery: AlertDelivery) => Promise<{ message: AlertMessage } | { stale: string }>;
/** A channel as it is now (null: deleted). */
type CurrentChannel = (id: string) => ChannelRecord | null;

/**
 * Sends messages to channels and keeps the delivery log: each attempt's status code or error,
 * retried with a doubling wait (policy.retryBaseMs, 2x, 4x...) up to policy.deliveryAttempts. Each attempt
 * sends to the channel as it is then (a changed url or secret applies; a deleted channel ends its deliveries);
 * a refusal of the request itself (4xx but 408 and 429) is not retried.
 *
 * An outbox: a delivery is stored (pending) before it is sent, and sent only once the
 * transaction that stored it committed; each attempt's outcome is stored before the next.
 */
export class Deliveries extends EventEmitter<{ updated: [AlertDelivery] }> {
  private readonly last = new Map<string, AlertDelivery>();
  /** Deliveries waiting for their attempt, by timer. */
  private readonly timers = new Map<NodeJS.Timeout, string>();
  /** Deliveries this process attempts or waits to attempt: taking one up again would send it twice. */
  private readonly active = new Set<string>();
  private pending = 0;
  private stopped = false;

  constructor(
    private readonly repository: AlertChannelsRepository,
    private readonly policy: AlertPolicy,
    private readonly deferred: WriteScheduler,
    private readonly sql: Pick<Sql, 'afterCommit'>,
    private readonly current: CurrentChannel,
    private readonly send: Send = sendTo,
  ) {
    super();
  }

  /**
   * Stores the delivery (pending) and sends it once that committed; answers it as stored.
   * `inTransaction`: the caller's transaction (an audited request) is open: the delivery is written
   * in it directly, not through DeferredWrites (whose queue may wait on this very transaction), and
   * memory follows its commit.
   */
  async deliver(channel: ChannelRecord, message: AlertMessage, alertIds: string[], options: { inTransaction?: boolean } = {}): Promise<AlertDelivery> {
    const now = Date.now();
    const delivery: AlertDelivery = {
      id: crypto.randomUUID(), channel_id: channel.id, kind: message.event, alert_ids: alertIds, title: message.title, status: 'pending',
      status_code: null, error: null, attempts: 0, created_at: now, updated_at: now, next_attempt_at: now,
    };
    if (options.inTransaction) return this.deliverInTransaction(delivery, message);
    if (this.pending >= MAX_PENDING) return this.record({ ...delivery, status: 'failed', error: 'too many deliveries waiting: not sent', next_attempt_at: null });
    this.pending++;
    try {
      await this.record(delivery);
    } catch (err) {
      this.pending--;
      throw err;
    }
    this.sql.afterCommit(() => this.attemptNow(delivery, message));
    return delivery;
  }

  private async deliverInTransaction(delivery: AlertDelivery, message: AlertMessage): Promise<AlertDelivery> {
    if (this.pending >= MAX_PENDING) {
      const refused: AlertDelivery = { ...delivery, status: 'failed', error: 'too many deliveries waiting: not sent', next_attempt_at: null };
      await this.repository.saveDelivery(refused);
      this.sql.afterCommit(() => this.show(refused));
      return refused;
    }
    await this.repository.saveDelivery(delivery);
    this.sql.afterCommit(() => {
      this.pending++;
      this.show(delivery);
      this.attemptNow(delivery, message);
    });
    return delivery;
  }

  private show(delivery: AlertDelivery): void {
    this.last.set(delivery.channel_id, delivery);
    this.emit('updated', delivery);
  }

  lastOf(channelId: string): AlertDelivery | null {
    return this.last.get(channelId) ?? null;
  }

  /** Forgets a deleted channel's last delivery (its retries stop at their next attempt). */
  forget(channelId: string): void {
    this.last.delete(channelId);
  }

  list(channelId: string, limit: number): Promise<AlertDelivery[]> {
    return this.repository.deliveries(channelId, limit);
  }

  /** A failure nobody awaits (a delivery's write, a grouped send): logged, never unhandled. */
  report(err: unknown, what: string): void {
    reportQuietly(this.deferred, err, what);
  }

  /** Retries wait no longer in memory: what is pending stays pending in the database (resume() takes it up again). */
  stop(): void {
    this.stopped = true;
    this.pending -= this.timers.size; // each timer is a delivery waiting for its attempt
    for (const [timer, id] of this.timers) {
      clearTimeout(timer);
      this.active.delete(id); // stays pending: the next leader (or start) takes it up
    }
    this.timers.clear();
  }

  /** Attempts again after stop() (a replica elected again). */
  start(): void {
    this.stopped = false;
  }

  /**
   * A delivery stored pending by this server before a restart, by a leader before a handover, or
   * by another replica that made it (a channel test on a follower, which leaves its retries to
   * the leader): taken up at its next_attempt_at (not before holdMs), then retried as any other.
   * What it says is asked of `whatNow` then, from the delivery as stored at that moment. Whether
   * it was taken (not when stopped, nor when this process has it already).
   */
  resume(delivery: AlertDelivery, whatNow: WhatItSaysNow, holdMs = 0): boolean {
    if (this.stopped || this.active.has(delivery.id)) return false;
    this.pending++;
    this.takeUpLater(delivery, whatNow, Math.max(holdMs, (delivery.next_attempt_at ?? Date.now()) - Date.now()));
    return true;
  }

  /** Whether this process attempts the delivery (or waits to). */
  attempts(id: string): boolean {
    return this.active.has(id);
  }

  private attemptNow(delivery: AlertDelivery, message: AlertMessage): void {
    this.active.add(delivery.id);
    void this.attempt(delivery, message);
  }

  private later(delivery: AlertDelivery, message: AlertMessage, waitMs: number): void {
    this.wait(delivery.id, waitMs, () => this.attempt(delivery, message));
  }

  private takeUpLater(delivery: AlertDelivery, whatNow: WhatItSaysNow, waitMs: number): void {
    this.wait(delivery.id, waitMs, () => this.takeUp(delivery, whatNow));
  }

  private wait(id: string, waitMs: number, then: () => Promise<void>): void {
    this.active.add(id);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void then();
    }, waitMs);
    timer.unref();
    this.timers.set(timer, id);
  }

  /**
   * A resumed delivery, as stored now: another process (a deposed leader, still alive) may have
   * sent it, given it up, or stored a retry meanwhile; what it says may be over (its alerts
   * resolved: given up, so that it never arrives after their resolution).
   */
  private async takeUp(read: AlertDelivery, whatNow: WhatItSaysNow): Promise<void> {
    let stored: AlertDelivery | undefined;
    try {
      stored = await this.repository.delivery(read.id);
    } catch (err) {
      this.report(err, `reading delivery ${read.id} again`);
      stored = undefined;
    }
    const drop = () => { this.pending--; this.active.delete(read.id); };
    // Deposed meanwhile, or the database away: the next leader (or start) takes it up.
    if (this.stopped || stored?.status !== 'pending') return drop();
    if (stored.attempts !== read.attempts) {
      // Another process stored a retry: it is this one's now, at that retry's time.
      this.takeUpLater(stored, whatNow, Math.max(0, (stored.next_attempt_at ?? Date.now()) - Date.now()));
      return;
    }
    let now: Awaited<ReturnType<WhatItSaysNow>>;
    try {
      now = await whatNow(stored);
    } catch (err) {
      this.report(err, `reading the alerts of delivery ${read.id}`);
      return drop();
    }
    if ('message' in now) return this.attempt(stored, now.message);
    drop();
    await this.recordQuietly({ ...stored, status: 'failed', error: now.stale.slice(0, ERROR_CHARS), updated_at: Date.now(), next_attempt_at: null });
  }

  private async attempt(before: AlertDelivery, message: AlertMessage): Promise<void> {
    const attempts = before.attempts + 1;
    const channel = this.current(before.channel_id);
    if (!channel) {
      this.pending--;
      this.active.delete(before.id);
      return;
    }
    let code: number;
    try {
      code = await this.send(channel, message, this.policy.deliveryTimeoutMs);
    } catch (err) {
      await this.failed(before, message, attempts, err);
      return;
    }
    await this.finish({ ...before, status: 'sent', status_code: code, error: null, attempts, updated_at: Date.now(), next_attempt_at: null });
  }

  /** An attempt failed: retried after a doubling wait, or given up. */
  private async failed(before: AlertDelivery, message: AlertMessage, attempts: number, err: unknown): Promise<void> {
    const code = err instanceof DeliveryError ? err.statusCode : null;
    const error = String((err as Error).message ?? err).slice(0, ERROR_CHARS);
    const failed = { ...before, status_code: code, error, attempts, updated_at: Date.now() };
    if (attempts >= this.policy.deliveryAttempts || (err instanceof DeliveryError && err.final)) {
      await this.finish({ ...failed, status: 'failed', next_attempt_at: null });
      return;
    }
    const wait = this.policy.retryBaseMs * 2 ** (attempts - 1);
    const next = await this.recordQuietly({ ...failed, next_attempt_at: Date.now() + wait });
    if (this.stopped) {
      this.pending--; // stored pending: the leader takes it up (takeUpOverdue in plugins/alerts.ts), or the next start
      this.active.delete(before.id);
      return;
    }
    this.later(next, message, wait);
  }

  private async finish(delivery: AlertDelivery): Promise<void> {
    this.pending--;
    // Until its outcome is stored it stays this process's: stored pending still, another pass
    // taking it up would send it again (a new process resumes it, as before). A write waiting for
    // room (DeferredWrites) lets it go once stored.
    try {
      await this.record(delivery, () => this.active.delete(delivery.id));
    } catch (err) {
      this.report(err, `storing delivery ${delivery.id}`);
    }
  }

  /**
   * Stores a delivery as it is now, then shows it. A write the disk refuses waits for room
   * (DeferredWrites) and the delivery goes on: the lab hears of its alerts rather than not.
   */
  private async record(delivery: AlertDelivery, onStored?: () => void): Promise<AlertDelivery> {
    if (!this.current(delivery.channel_id)) {
      onStored?.();
      return delivery; // deleted while sending: its log is gone with it
    }
    const write = async () => {
      if (this.current(delivery.channel_id)) {
        await this.repository.saveDelivery(delivery);
        if (delivery.status !== 'pending') await this.repository.trimDeliveries(delivery.channel_id);
      }
      onStored?.();
    };
    await this.deferred.run(`alert-delivery:${delivery.id}`, write);
    this.show(delivery);
    return delivery;
  }

  /** record() for the attempts, which nobody awaits: an error is reported, never unhandled. */
  private async recordQuietly(delivery: AlertDelivery): Promise<AlertDelivery> {
    try {
      return await this.record(delivery);
    } catch (err) {
      this.report(err, `storing delivery ${delivery.id}`);
      return delivery;
    }
  }
}
