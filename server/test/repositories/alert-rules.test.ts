import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AlertRule } from '@dvic/protocol';
import { AlertRulesRepository } from '../../src/repositories/alert-rules-repository.js';
import { repositoryOn } from '../support/repository-on.js';
import { storeKinds } from '../support/stores.js';

const rule = (change: Partial<AlertRule> = {}): AlertRule => ({
  id: crypto.randomUUID(), name: 'disk', kind: 'disk_used', threshold: 90.5, for_s: 300, scope: { labels: { fleet: 'hall' } }, severity: 'warning',
  enabled: true, repeat_s: 3600, channels: null, builtin: false, created_at: 1_700_000_000_000, ...change,
});

describe.each(storeKinds)('alert rules on $name', (kind) => {
  const under = repositoryOn(kind, (sql) => new AlertRulesRepository(sql));

  it('seeds the defaults once: the first start of a fresh store is told so, later ones are not', async () => {
    expect(await under.repository.takeDefaultsPending()).toBe(true);
    expect(await under.repository.takeDefaultsPending()).toBe(false);
  });

  it('keeps a rule as it was given: scope and channels as JSON, booleans, a fractional threshold, ms timestamps', async () => {
    const channels = [crypto.randomUUID()];
    const a = rule({ name: 'b-rule', created_at: 1_700_000_000_002, channels, enabled: false, builtin: true });
    const b = rule({ name: 'a-rule', created_at: 1_700_000_000_001, threshold: null, repeat_s: null, kind: 'node_offline' });
    await under.repository.save(a);
    await under.repository.save(b);
    expect(await under.repository.all()).toEqual([b, a]);
  });

  it('an update changes what may change, never the kind, whether it is built in or when it was made', async () => {
    const original = rule({ name: 'temp', kind: 'temperature', created_at: 1_800_000_000_000 });
    await under.repository.save(original);
    await under.repository.save({ ...original, name: 'hot', threshold: 80, enabled: false, kind: 'disk_used', builtin: true, created_at: 1, channels: [] });
    expect((await under.repository.all()).find((r) => r.id === original.id)).toEqual({ ...original, name: 'hot', threshold: 80, enabled: false, channels: [] });
  });

  it('deletes a rule once', async () => {
    const gone = rule({ name: 'gone' });
    await under.repository.save(gone);
    expect(await under.repository.delete(gone.id)).toBe(true);
    expect(await under.repository.delete(gone.id)).toBe(false);
    expect((await under.repository.all()).some((r) => r.id === gone.id)).toBe(false);
  });
});
