// The users store on every dialect: unique names, the last-admin count, role and disabled state, cascade on removal.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { conflictOnUnique } from '../../src/db/unique-violation.js';
import { UsersRepository } from '../../src/repositories/users-repository.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

describe.each(storeKinds)('users repository on $name', (kind) => {
  let store: StoreUnderTest;
  let users: UsersRepository;
  beforeEach(async () => {
    store = await kind.open();
    users = new UsersRepository(store.sql);
  });
  afterEach(async () => store.close());

  it('creates users with their id and times, lists them by name and counts them', async () => {
    expect(await users.count()).toBe(0);
    const before = Date.now();
    const zoe = await users.create('zoe', 'hash-z', 'viewer');
    const ada = await users.create('ada', 'hash-a');
    expect(zoe).toMatchObject({ username: 'zoe', role: 'viewer', disabledAt: null, lastLoginAt: null });
    expect(zoe.createdAt).toBeGreaterThanOrEqual(before);
    expect(typeof zoe.id).toBe('number');
    expect(ada.role).toBe('admin');
    expect(ada.id).not.toBe(zoe.id);
    expect((await users.list()).map((u) => u.username)).toEqual(['ada', 'zoe']);
    expect(await users.count()).toBe(2);
    expect(await users.findById(zoe.id)).toEqual(zoe);
    expect(await users.findByName('ada')).toEqual(ada);
    expect(await users.findByName('nobody')).toBeUndefined();
  });

  it('refuses a second user with a name already taken, and keeps the first', async () => {
    await users.create('ada', 'hash-1', 'operator');
    await expect(users.create('ada', 'hash-2', 'admin')).rejects.toThrow(/unique|duplicate/i);
    expect(await users.count()).toBe(1);
    expect(await users.passwordHash((await users.findByName('ada'))!.id)).toBe('hash-1');
  });

  it('answers a name taken by a concurrent request as a 409 conflict, the same on each dialect', async () => {
    await users.create('ada', 'hash-1', 'operator');
    await expect(conflictOnUnique(users.create('ada', 'hash-2', 'admin'), 'user ada already exists'))
      .rejects.toMatchObject({ statusCode: 409, message: 'user ada already exists' });
  });

  it('checks sign-ins against enabled users only, with their current password hash', async () => {
    const ada = await users.create('ada', 'hash-1', 'operator');
    expect(await users.findWithHash('ada')).toMatchObject({ id: ada.id, passwordHash: 'hash-1' });
    await users.setPasswordHash(ada.id, 'hash-2');
    expect((await users.findWithHash('ada'))!.passwordHash).toBe('hash-2');
    await users.update(ada.id, { disabled: true }, 5000);
    expect(await users.findWithHash('ada')).toBeUndefined();
    expect((await users.findById(ada.id))!.disabledAt).toBe(5000);
  });

  it('changes a role, keeps the first disable time, enables again and records sign-ins', async () => {
    const ada = await users.create('ada', 'h', 'viewer');
    expect((await users.update(ada.id, { role: 'operator' }))!.role).toBe('operator');
    await users.update(ada.id, { disabled: true }, 1000);
    expect((await users.update(ada.id, { disabled: true }, 2000))!.disabledAt).toBe(1000);
    expect((await users.update(ada.id, { disabled: false }))!.disabledAt).toBeNull();
    await users.recordLogin(ada.id, 1_764_000_000_000);
    expect((await users.findById(ada.id))!.lastLoginAt).toBe(1_764_000_000_000);
    expect(await users.update(9999, { role: 'admin' })).toBeUndefined();
  });

  it('counts the other enabled admins, so the last one can be kept', async () => {
    const a = await users.create('a', 'h', 'admin');
    const b = await users.create('b', 'h', 'admin');
    await users.create('c', 'h', 'operator');
    expect(await users.otherActiveAdmins(a.id)).toBe(1);
    await users.update(b.id, { disabled: true });
    expect(await users.otherActiveAdmins(a.id)).toBe(0);
    expect(await users.otherActiveAdmins(b.id)).toBe(1);
  });

  it('keeps an admin when the last two demote each other at the same time', async () => {
    const a = await users.create('a', 'h', 'admin');
    const b = await users.create('b', 'h', 'admin');
    let checked!: () => void;
    const aChecked = new Promise<void>((resolve) => { checked = resolve; });
    const demote = (id: number, afterCheck: () => Promise<void>) => store.sql.transaction(async () => {
      if ((await users.otherActiveAdmins(id)) === 0) return 'refused';
      await afterCheck();
      await users.update(id, { role: 'operator' });
      return 'demoted';
    });
    const outcomes = await Promise.all([
      // a checks first and demotes itself once b's check is under way.
      demote(a.id, async () => { checked(); await new Promise((r) => setTimeout(r, 200)); }),
      aChecked.then(() => demote(b.id, async () => {})),
    ]);
    expect(outcomes.sort()).toEqual(['demoted', 'refused']);
    expect((await users.list()).filter((u) => u.role === 'admin')).toHaveLength(1);
  });

  it('removes a user with their sessions and tokens (cascade), and says whether one was removed', async () => {
    const ada = await users.create('ada', 'h', 'operator');
    await store.sql.run('INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)', ['s1', ada.id, 1, 2]);
    await store.sql.run('INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at) VALUES (?, ?, ?, ?, ?)', [ada.id, 't', 'p', 'h1', 1]);
    expect(await users.delete(ada.id)).toBe(true);
    expect(await users.delete(ada.id)).toBe(false);
    expect(await store.sql.get('SELECT token_hash FROM sessions WHERE user_id = ?', [ada.id])).toBeUndefined();
    expect(await store.sql.get('SELECT id FROM api_tokens WHERE user_id = ?', [ada.id])).toBeUndefined();
  });
});
