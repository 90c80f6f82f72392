// The sessions store on every dialect: only live sessions of enabled users authenticate; ending them one or all but one.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionsRepository } from '../../src/repositories/sessions-repository.js';
import { UsersRepository, type User } from '../../src/repositories/users-repository.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

describe.each(storeKinds)('sessions repository on $name', (kind) => {
  let store: StoreUnderTest;
  let users: UsersRepository;
  let sessions: SessionsRepository;
  let ada: User;
  beforeEach(async () => {
    store = await kind.open();
    users = new UsersRepository(store.sql);
    sessions = new SessionsRepository(store.sql);
    ada = await users.create('ada', 'h', 'operator');
  });
  afterEach(async () => store.close());

  const stored = async () => (await store.sql.all<{ token_hash: string }>('SELECT token_hash FROM sessions ORDER BY token_hash')).map((r) => r.token_hash);

  it('finds the user of a live session and when it ends; nothing for an unknown hash', async () => {
    const before = Date.now();
    await sessions.create('hash-1', ada.id, 60_000);
    const found = await sessions.find('hash-1');
    expect(found?.user).toEqual(ada);
    expect(found!.expiresAt).toBeGreaterThanOrEqual(before + 60_000);
    expect(await sessions.find('hash-2')).toBeUndefined();
    expect(await stored()).toEqual(['hash-1']);
  });

  it('stops authenticating a session at its expiry, and housekeeping removes expired rows only', async () => {
    await sessions.create('short', ada.id, 1000);
    await sessions.create('long', ada.id, 3_600_000);
    const { expiresAt } = (await sessions.find('short'))!;
    expect(await sessions.find('short', expiresAt - 1)).toBeDefined();
    expect(await sessions.find('short', expiresAt)).toBeUndefined();
    expect(await sessions.deleteExpired(expiresAt)).toBe(1);
    expect(await stored()).toEqual(['long']);
  });

  it('does not authenticate a session of a disabled user', async () => {
    await sessions.create('hash-1', ada.id, 60_000);
    await users.update(ada.id, { disabled: true });
    expect(await sessions.find('hash-1')).toBeUndefined();
    await users.update(ada.id, { disabled: false });
    expect(await sessions.find('hash-1')).toBeDefined();
  });

  it('ends one session, or every session of a user but the one kept', async () => {
    const bob = await users.create('bob', 'h', 'viewer');
    for (const hash of ['a1', 'a2', 'a3']) await sessions.create(hash, ada.id, 60_000);
    await sessions.create('b1', bob.id, 60_000);
    await sessions.delete('a1');
    expect(await sessions.find('a1')).toBeUndefined();
    expect(await sessions.deleteForUser(ada.id, 'a3')).toBe(1);
    expect(await stored()).toEqual(['a3', 'b1']);
    expect(await sessions.deleteForUser(ada.id)).toBe(1);
    expect(await stored()).toEqual(['b1']);
  });
});
