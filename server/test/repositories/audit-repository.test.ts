// The audit store on every dialect: entries appended with their details, never changed or removed,
// listed newest first with filters, search text and pages.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditRepository, type NewAuditEntry } from '../../src/repositories/audit-repository.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

const entry = (action: string, extra: Partial<NewAuditEntry> = {}): NewAuditEntry => ({
  user_id: 1, username: 'ada', source_ip: '10.0.0.9', action, target: null, outcome: 'ok', details: null, ...extra,
});

describe.each(storeKinds)('audit repository on $name', (kind) => {
  let store: StoreUnderTest;
  let audit: AuditRepository;
  beforeEach(async () => {
    store = await kind.open();
    audit = new AuditRepository(store.sql);
  });
  afterEach(async () => store.close());

  const actions = async (query: Partial<Parameters<AuditRepository['search']>[0]> = {}) =>
    (await audit.search({ limit: 100, ...query })).entries.map((e) => e.action);

  it('appends entries with their time and details, newest first', async () => {
    await audit.append(entry('login', { at: 1000 }));
    await audit.append(entry('user.create', { at: 2000, target: '7', details: { body: { username: 'bob', role: 'viewer' } } }));
    await audit.appendLater(entry('logout', { at: 3000, outcome: 'denied', username: null, user_id: null }));
    const { entries, more } = await audit.search({ limit: 10 });
    expect(more).toBe(false);
    expect(entries).toEqual([
      { id: expect.any(Number), at: 3000, user_id: null, username: null, source_ip: '10.0.0.9', action: 'logout', target: null, outcome: 'denied', details: null },
      { id: expect.any(Number), at: 2000, user_id: 1, username: 'ada', source_ip: '10.0.0.9', action: 'user.create', target: '7', outcome: 'ok', details: { body: { username: 'bob', role: 'viewer' } } },
      { id: expect.any(Number), at: 1000, user_id: 1, username: 'ada', source_ip: '10.0.0.9', action: 'login', target: null, outcome: 'ok', details: null },
    ]);
    expect(entries[0]!.id).toBeGreaterThan(entries[1]!.id);
  });

  it('refuses to change or remove an entry (append-only)', async () => {
    await audit.append(entry('login'));
    await expect(store.sql.run("UPDATE audit_log SET action = 'nothing'")).rejects.toThrow(/append-only/);
    await expect(store.sql.run('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
    expect(await actions()).toEqual(['login']);
  });

  it('filters by user, action, target and outcome', async () => {
    await audit.append(entry('user.create', { target: '7' }));
    await audit.append(entry('user.delete', { target: '7', username: 'bob' }));
    await audit.append(entry('user.delete', { target: '8', outcome: 'denied' }));
    expect(await actions({ username: 'bob' })).toEqual(['user.delete']);
    expect(await actions({ action: 'user.delete' })).toEqual(['user.delete', 'user.delete']);
    expect((await audit.search({ limit: 10, target: '7' })).entries.map((e) => e.username)).toEqual(['bob', 'ada']);
    expect(await actions({ outcome: 'denied' })).toEqual(['user.delete']);
    expect(await actions({ action: 'user.delete', outcome: 'ok' })).toEqual(['user.delete']);
  });

  it('finds search text in the action, target and details, case- and accent-insensitive, by word prefix', async () => {
    await audit.append(entry('exec', { target: 'pi-hall', details: { body: { command: 'systemctl restart Caméra' } } }));
    await audit.append(entry('user.create', { details: { body: { username: 'camille' } } }));
    await audit.append(entry('token.revoke', { target: '12' }));
    expect(await actions({ q: 'camera' })).toEqual(['exec']);
    expect(await actions({ q: 'CAM' })).toEqual(['user.create', 'exec']);
    expect(await actions({ q: 'hall' })).toEqual(['exec']);
    expect(await actions({ q: 'revoke 12' })).toEqual(['token.revoke']);
    expect(await actions({ q: '"restart camera"' })).toEqual(['exec']);
    expect(await actions({ q: 'amera' })).toEqual([]);
    expect(await actions({ q: "'; DROP TABLE audit_log; --" })).toEqual([]);
    expect(await actions({ q: 'cam', action: 'exec' })).toEqual(['exec']);
  });

  it('pages newest first: one more row than asked says another page exists, beforeId continues', async () => {
    for (let i = 0; i < 7; i++) await audit.append(entry(`a${i}`, { details: { n: i, kind: i % 2 === 0 ? 'even' : 'odd' } }));
    const first = await audit.search({ limit: 3 });
    expect(first.entries.map((e) => e.action)).toEqual(['a6', 'a5', 'a4']);
    expect(first.more).toBe(true);
    const last = await audit.search({ limit: 3, beforeId: first.entries.at(-1)!.id });
    expect(last.entries.map((e) => e.action)).toEqual(['a3', 'a2', 'a1']);
    expect(last.more).toBe(true);
    const matching = await audit.search({ limit: 2, q: 'even' });
    expect(matching.entries.map((e) => e.action)).toEqual(['a6', 'a4']);
    expect(matching.more).toBe(true);
    const rest = await audit.search({ limit: 2, q: 'even', beforeId: matching.entries.at(-1)!.id });
    expect(rest).toMatchObject({ more: false });
    expect(rest.entries.map((e) => e.action)).toEqual(['a2', 'a0']);
  });

  it('finds matches past the first rows it reads (search over a long log)', async () => {
    await audit.append(entry('needle', { details: { text: 'the one to find' } }));
    const rows = Array.from({ length: 1200 }, (_, i) => [i, 1, 'ada', null, `noise${i}`, null, 'ok', null]);
    await store.sql.runMany('INSERT INTO audit_log (at, user_id, username, source_ip, action, target, outcome, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', rows);
    expect(await actions({ q: 'find' })).toEqual(['needle']);
    expect((await audit.search({ limit: 5, q: 'noise' })).more).toBe(true);
  });
});
