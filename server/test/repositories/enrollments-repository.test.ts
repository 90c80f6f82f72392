// The enrollment stores on every dialect: views kept as given, the unfinished ones found after a
// restart, host keys remembered per address, install tokens used at most max_uses times.
import type { EnrollmentView } from '@dvic/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EnrollmentsRepository, EnrollmentTokensRepository } from '../../src/repositories/enrollments-repository.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

const view = (id: string, state: EnrollmentView['state']): EnrollmentView => ({
  id, name: `pi-${id}`, host: '10.0.0.7', port: 22, username: 'pi', via: 'server', labels: { room: 'hall' }, state, node_id: null,
  host_key_fingerprint: null, steps: [{ name: 'reach_source', status: 'skipped', duration_ms: null }], error: null, created_at: 1000, updated_at: 1000,
});

describe.each(storeKinds)('enrollments repository on $name', (kind) => {
  let store: StoreUnderTest;
  let enrollments: EnrollmentsRepository;
  let tokens: EnrollmentTokensRepository;
  beforeEach(async () => {
    store = await kind.open();
    enrollments = new EnrollmentsRepository(store.sql);
    tokens = new EnrollmentTokensRepository(store.sql);
  });
  afterEach(async () => store.close());

  it('saves a view and replaces it on the next save; finds the unfinished ones', async () => {
    await enrollments.save(view('a', 'running'));
    await enrollments.save(view('b', 'awaiting_host_key'));
    await enrollments.save(view('c', 'succeeded'));
    await enrollments.save(view('d', 'running'));
    await enrollments.save({ ...view('d', 'failed'), updated_at: 2000 });
    expect(await enrollments.get('d')).toEqual({ ...view('d', 'failed'), updated_at: 2000 });
    expect(await enrollments.get('zz')).toBeUndefined();
    expect((await enrollments.unfinished()).map((v) => v.id).sort()).toEqual(['a', 'b']);
  });

  it('remembers the node and host key met at an address, the latest one winning', async () => {
    for (const id of ['n1', 'n2']) {
      await store.sql.run('INSERT INTO nodes (id, name, public_key, created_at, status_since) VALUES (?, ?, ?, ?, ?)', [id, id, 'key', 1, 1]);
    }
    expect(await enrollments.knownHost('10.0.0.7', 22)).toBeUndefined();
    await enrollments.rememberHost('10.0.0.7', 22, 'n1', 'SHA256:one');
    await enrollments.rememberHost('10.0.0.7', 2222, 'n2', 'SHA256:other-port');
    expect(await enrollments.knownHost('10.0.0.7', 22)).toEqual({ nodeId: 'n1', fingerprint: 'SHA256:one' });
    await enrollments.rememberHost('10.0.0.7', 22, 'n2', 'SHA256:two');
    expect(await enrollments.knownHost('10.0.0.7', 22)).toEqual({ nodeId: 'n2', fingerprint: 'SHA256:two' });
    expect(await enrollments.knownHost('10.0.0.7', 2222)).toEqual({ nodeId: 'n2', fingerprint: 'SHA256:other-port' });
  });

  it('creates an install token found by id and by hash only, with its labels', async () => {
    const token = await tokens.create('t1', 'hash-1', { labels: { room: 'lab' }, maxUses: 2, expiresAt: 99_000 });
    expect(token).toMatchObject({ id: 't1', labels: { room: 'lab' }, max_uses: 2, uses: 0, expires_at: 99_000 });
    expect(await tokens.byId('t1')).toEqual(token);
    expect(await tokens.byHash('hash-1')).toEqual(token);
    expect(await tokens.byHash('t1')).toBeUndefined();
  });

  it('counts uses up to max_uses: a single-use token works once, even when two ask at the same time', async () => {
    await tokens.create('once', 'h-once', { labels: {}, maxUses: 1, expiresAt: 99_000 });
    const raced = await Promise.all([tokens.use('once'), tokens.use('once')]);
    expect(raced.sort()).toEqual([false, true]);
    expect(await tokens.use('once')).toBe(false);
    expect((await tokens.byId('once'))!.uses).toBe(1);
    await tokens.create('twice', 'h-twice', { labels: {}, maxUses: 2, expiresAt: 99_000 });
    expect([await tokens.use('twice'), await tokens.use('twice'), await tokens.use('twice')]).toEqual([true, true, false]);
    expect(await tokens.use('missing')).toBe(false);
  });
});
