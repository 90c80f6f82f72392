import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AlertDelivery } from '@dvic/protocol';
import { AlertChannelsRepository, type ChannelRecord } from '../../src/repositories/alert-channels-repository.js';
import { repositoryOn } from '../support/repository-on.js';
import { storeKinds } from '../support/stores.js';

const channel = (change: Partial<ChannelRecord> = {}): ChannelRecord => ({
  id: crypto.randomUUID(), type: 'webhook', name: 'lab', url: 'https://hooks.example/x', secret: 'hmac-key', chatId: null, email: null,
  enabled: true, createdAt: 1_700_000_000_000, ...change,
});

const delivery = (channelId: string, createdAt: number, change: Partial<AlertDelivery> = {}): AlertDelivery => ({
  id: crypto.randomUUID(), channel_id: channelId, kind: 'firing', alert_ids: [crypto.randomUUID()], title: `at ${createdAt}`, status: 'pending',
  status_code: null, error: null, attempts: 0, created_at: createdAt, updated_at: createdAt, next_attempt_at: createdAt, ...change,
});

describe.each(storeKinds)('alert channels on $name', (kind) => {
  const under = repositoryOn(kind, (sql) => new AlertChannelsRepository(sql));

  it('keeps channels with their secret, chat id and email settings; an update replaces them', async () => {
    const email = { host: 'smtp.example', port: 587, secure: false, user: 'lab', from: 'lab@example.org', to: ['ops@example.org'] };
    const hook = channel({ name: 'b', createdAt: 1_700_000_000_002 });
    const mail = channel({ type: 'email', name: 'a', url: null, email, createdAt: 1_700_000_000_001, enabled: false });
    await under.repository.save(hook);
    await under.repository.save(mail);
    expect(await under.repository.all()).toEqual([mail, hook]);
    const changed = { ...hook, url: 'https://hooks.example/y', secret: null, enabled: false };
    await under.repository.save(changed);
    expect((await under.repository.all()).find((c) => c.id === hook.id)).toEqual(changed);
  });

  it('logs deliveries newest first; an attempt updates its delivery in place', async () => {
    const c = channel();
    await under.repository.save(c);
    const first = delivery(c.id, 1000);
    const second = delivery(c.id, 2000);
    await under.repository.saveDelivery(first);
    await under.repository.saveDelivery(second);
    const sent = { ...first, status: 'sent' as const, status_code: 200, attempts: 1, next_attempt_at: null };
    await under.repository.saveDelivery(sent);
    expect(await under.repository.deliveries(c.id, 10)).toEqual([second, sent]);
    expect(await under.repository.deliveries(c.id, 1)).toEqual([second]);
  });

  it('keeps the newest 200 deliveries of a channel, and those of other channels', async () => {
    const busy = channel();
    const quiet = channel();
    await under.repository.save(busy);
    await under.repository.save(quiet);
    const logged = Array.from({ length: 205 }, (_, i) => delivery(busy.id, 10_000 + i));
    for (const d of [...logged, delivery(quiet.id, 1)]) await under.repository.saveDelivery(d);
    await under.repository.trimDeliveries(busy.id);
    const kept = await under.repository.deliveries(busy.id, 500);
    expect(kept.map((d) => d.created_at)).toEqual(logged.slice(5).reverse().map((d) => d.created_at));
    expect(await under.repository.deliveries(quiet.id, 10)).toHaveLength(1);
  });

  it('deleting a channel deletes its delivery log with it, once', async () => {
    const c = channel();
    await under.repository.save(c);
    await under.repository.saveDelivery(delivery(c.id, 5));
    expect(await under.repository.delete(c.id)).toBe(true);
    expect(await under.repository.deliveries(c.id, 10)).toEqual([]);
    expect(await under.repository.delete(c.id)).toBe(false);
  });
});
