// The API tokens store on every dialect: lookup by hash only while active, roles capped by the user's, revocation.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiTokensRepository } from '../../src/repositories/api-tokens-repository.js';
import { UsersRepository, type User } from '../../src/repositories/users-repository.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

describe.each(storeKinds)('API tokens repository on $name', (kind) => {
  let store: StoreUnderTest;
  let users: UsersRepository;
  let tokens: ApiTokensRepository;
  let ada: User;
  beforeEach(async () => {
    store = await kind.open();
    users = new UsersRepository(store.sql);
    tokens = new ApiTokensRepository(store.sql);
    ada = await users.create('ada', 'h', 'operator');
  });
  afterEach(async () => store.close());

  it('creates a token, lists it and authenticates its hash as its user, noting the use', async () => {
    const token = await tokens.create(ada.id, 'ci', 'dvic_abc', 'hash-1', { role: 'viewer', expiresAt: null, scope: null });
    expect(token).toMatchObject({ name: 'ci', prefix: 'dvic_abc', role: 'viewer', expiresAt: null, lastUsedAt: null, revokedAt: null, scope: null });
    expect(await tokens.listForUser(ada.id)).toEqual([token]);
    expect(await tokens.hashOf(token.id)).toBe('hash-1');
    const found = await tokens.authenticate('hash-1', 5000);
    expect(found).toEqual({ user: { ...ada, role: 'viewer' }, expiresAt: null, scope: null });
    expect((await tokens.get(token.id))!.lastUsedAt).toBe(5000);
    await tokens.authenticate('hash-1', 6000, false);
    expect((await tokens.get(token.id))!.lastUsedAt).toBe(5000);
    expect(await tokens.authenticate('hash-2')).toBeUndefined();
  });

  it("caps a token's role by its user's, and follows the user's demotion", async () => {
    const admin = await tokens.create(ada.id, 'wide', 'p', 'hash-admin', { role: 'admin' });
    const mine = await tokens.create(ada.id, 'same', 'p2', 'hash-null');
    expect(admin.role).toBe('operator');
    expect(mine.role).toBe('operator');
    await users.update(ada.id, { role: 'viewer' });
    expect((await tokens.authenticate('hash-admin'))!.user.role).toBe('viewer');
    expect((await tokens.get(mine.id))!.role).toBe('viewer');
  });

  it('does not authenticate an expired token, a disabled user\'s, or a revoked one', async () => {
    const expiring = await tokens.create(ada.id, 'soon', 'p', 'hash-exp', { expiresAt: 10_000, scope: 'metrics' });
    expect(await tokens.authenticate('hash-exp', 9_999)).toMatchObject({ expiresAt: 10_000, scope: 'metrics' });
    expect(await tokens.authenticate('hash-exp', 10_000)).toBeUndefined();
    expect(expiring.scope).toBe('metrics');
    const other = await tokens.create(ada.id, 'other', 'p', 'hash-o');
    await users.update(ada.id, { disabled: true });
    expect(await tokens.authenticate('hash-o')).toBeUndefined();
    await users.update(ada.id, { disabled: false });
    expect((await tokens.revoke(ada.id, other.id))!.revokedAt).toEqual(expect.any(Number));
    expect(await tokens.authenticate('hash-o')).toBeUndefined();
    expect(await tokens.revoke(ada.id, other.id)).toBeUndefined();
  });

  it("revokes only the owner's token by id, and all of a user's active tokens at once", async () => {
    const bob = await users.create('bob', 'h', 'admin');
    const a1 = await tokens.create(ada.id, 'a1', 'p', 'ha1');
    await tokens.create(ada.id, 'a2', 'p', 'ha2');
    const b1 = await tokens.create(bob.id, 'b1', 'p', 'hb1');
    expect(await tokens.revoke(ada.id, b1.id)).toBeUndefined();
    await tokens.revoke(ada.id, a1.id);
    expect(await tokens.revokeAllForUser(ada.id, 7000)).toEqual(['ha2']);
    expect(await tokens.revokeAllForUser(ada.id, 8000)).toEqual([]);
    expect((await tokens.listForUser(ada.id)).map((t) => t.revokedAt !== null)).toEqual([true, true]);
    expect(await tokens.authenticate('hb1')).toBeDefined();
  });

  it('refuses a second token with the same hash', async () => {
    await tokens.create(ada.id, 'one', 'p', 'same-hash');
    await expect(tokens.create(ada.id, 'two', 'p', 'same-hash')).rejects.toThrow(/unique|duplicate/i);
    expect(await tokens.listForUser(ada.id)).toHaveLength(1);
  });
});
