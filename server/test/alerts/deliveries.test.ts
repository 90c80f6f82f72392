// Deliveries and the pass that takes up pending ones, around a disk that refuses a write for a
// while. The repository and the write scheduler are stand-ins (a full disk on demand is not
// something a unit test can make): the real ones are covered by the alert tests of a real server
// and by e2e's small-disk lane. The rule checked here is the bookkeeping between them.
import { describe, expect, it } from 'vitest';
import type { AlertDelivery } from '@dvic/protocol';
import { DEFAULT_ALERT_POLICY } from '../../src/alerts/alert-policy.js';
import { Deliveries } from '../../src/alerts/deliveries.js';
import { testMessage } from '../../src/alerts/message.js';
import { resumePendingDeliveries } from '../../src/alerts/pending-deliveries.js';
import type { AlertChannelsRepository, ChannelRecord } from '../../src/repositories/alert-channels-repository.js';
import type { AlertsRepository } from '../../src/repositories/alerts-repository.js';
import type { WriteScheduler } from '../../src/services/deferred-writes.js';
import { waitFor } from '../support/test-server.js';

const channel: ChannelRecord = { id: 'c1', type: 'webhook', name: 'lab', url: 'http://127.0.0.1:9/', secret: null, chatId: null, email: null, enabled: true, createdAt: 0 };

/** The delivery log in memory, as the table would hold it. */
function memoryLog() {
  const rows = new Map<string, AlertDelivery>();
  const repository = {
    saveDelivery: async (d: AlertDelivery) => { rows.set(d.id, d); },
    trimDeliveries: async () => undefined,
    delivery: async (id: string) => rows.get(id),
    pendingDeliveries: async () => [...rows.values()].filter((d) => d.status === 'pending'),
  };
  return { rows, repository: repository as unknown as AlertChannelsRepository };
}

/** Writes now, or, while `full`, keeps them for later (as DeferredWrites does when the disk refuses). */
function refusingDisk() {
  const kept: (() => Promise<unknown>)[] = [];
  const disk = {
    full: false,
    async run(_key: string, write: () => Promise<unknown>): Promise<boolean> {
      if (disk.full) {
        kept.push(write);
        return false;
      }
      await write();
      return true;
    },
    background: () => undefined,
    uniqueKey: (prefix: string) => prefix,
    report: (err: unknown) => { throw err; },
    async room(): Promise<void> {
      disk.full = false;
      for (const write of kept.splice(0)) await write();
    },
  };
  return disk;
}

describe('alert deliveries', () => {
  it('a sent delivery whose outcome waits for room is not taken up again (it stays with its process until stored)', async () => {
    const { rows, repository } = memoryLog();
    const disk = refusingDisk();
    let sent = 0;
    const send = async () => {
      sent++;
      disk.full = true; // the outcome's write is refused
      return 200;
    };
    const deliveries = new Deliveries(repository, DEFAULT_ALERT_POLICY, disk as unknown as WriteScheduler, { afterCommit: (fn) => fn() }, () => channel, send);
    const delivery = await deliveries.deliver(channel, testMessage('lab', Date.now()), []);
    await waitFor(() => sent === 1, 10_000, 'the delivery sent');
    expect(rows.get(delivery.id)!.status).toBe('pending'); // on disk: still pending

    const takeUp = () => resumePendingDeliveries(deliveries, repository, {} as AlertsRepository, () => channel, { dueBefore: Date.now() + 60_000 });
    expect(await takeUp()).toBe(0);
    await disk.room();
    expect(rows.get(delivery.id)!.status).toBe('sent');
    expect(await takeUp()).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sent).toBe(1);
  });

  it('a resumed delivery is taken as it is stored when its time comes: sent by another process, left; a retry stored there, taken over at its time', async () => {
    const { rows, repository } = memoryLog();
    let sent = 0;
    const deliveries = new Deliveries(repository, DEFAULT_ALERT_POLICY, refusingDisk() as unknown as WriteScheduler, { afterCommit: (fn) => fn() }, () => channel, async () => { sent++; return 200; });
    const now = Date.now();
    const pending = (id: string): AlertDelivery => ({
      id, channel_id: channel.id, kind: 'test', alert_ids: [], title: 'a test', status: 'pending', status_code: null, error: null,
      attempts: 0, created_at: now, updated_at: now, next_attempt_at: now,
    });
    for (const id of ['sent elsewhere', 'retried elsewhere']) await repository.saveDelivery(pending(id));
    const takeUp = resumePendingDeliveries(deliveries, repository, {} as AlertsRepository, () => channel, { holdMs: 50 });
    expect(await takeUp).toBe(2);
    // Meanwhile the process that had them (a deposed leader, still alive) stored what it did.
    await repository.saveDelivery({ ...pending('sent elsewhere'), status: 'sent', status_code: 200, attempts: 1, next_attempt_at: null });
    const retryAt = Date.now() + 1000;
    await repository.saveDelivery({ ...pending('retried elsewhere'), status: 'pending', status_code: 500, attempts: 1, next_attempt_at: retryAt });
    await waitFor(() => sent === 1, 10_000, 'the retry sent');
    expect(Date.now()).toBeGreaterThanOrEqual(retryAt); // at its time, not at the hold's end
    expect([rows.get('sent elsewhere')!.attempts, rows.get('retried elsewhere')!.status, rows.get('retried elsewhere')!.attempts]).toEqual([1, 'sent', 2]);
  });
});
