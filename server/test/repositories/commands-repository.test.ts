// The commands store on every dialect: records kept with their spec and results, the unfinished
// found after a restart, history newest first with filters, search text and pages.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommandsRepository, type CommandRecord } from '../../src/repositories/commands-repository.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

const NODE_A = '0a1b2c3d-0000-4000-8000-00000000000a';
const NODE_B = '0a1b2c3d-0000-4000-8000-00000000000b';

function record(id: string, createdAt: number, extra: Partial<CommandRecord> = {}): CommandRecord {
  return {
    id, batch_id: null, node_id: NODE_A, user: 'ada', userId: 1, source_ip: '10.0.0.9', command: `echo ${id}`,
    spec: { argv: ['echo', id], env: { LANG: 'C' }, timeout_s: 30 }, status: 'queued', exit_code: null, signal: null, stdout: '', stderr: '',
    truncated: false, error: null, created_at: createdAt, started_at: null, finished_at: null, duration_ms: null, expires_at: null, ...extra,
  };
}

describe.each(storeKinds)('commands repository on $name', (kind) => {
  let store: StoreUnderTest;
  let commands: CommandsRepository;
  beforeEach(async () => {
    store = await kind.open();
    commands = new CommandsRepository(store.sql);
  });
  afterEach(async () => store.close());

  const ids = async (query: Partial<Parameters<CommandsRepository['search']>[0]> = {}) =>
    (await commands.search({ limit: 100, ...query })).commands.map((c) => c.id);

  it('keeps a command as recorded, then its result and output', async () => {
    const queued = record('c1', 1000, { expires_at: 61_000, batch_id: 'b1' });
    await commands.insert([queued]);
    expect(await commands.get('c1')).toEqual(queued);
    const ended = { ...queued, status: 'failed' as const, exit_code: 2, stdout: 'out ✓\n', stderr: 'bad\n', truncated: true, error: null, started_at: 1100, finished_at: 1350, duration_ms: 250.5 };
    await commands.update(ended);
    expect(await commands.get('c1')).toEqual(ended);
    await commands.update({ ...ended, status: 'lost', signal: 'SIGKILL', exit_code: null, error: 'the node went offline', truncated: false });
    expect(await commands.get('c1')).toMatchObject({ status: 'lost', signal: 'SIGKILL', exit_code: null, error: 'the node went offline', truncated: false, spec: queued.spec });
    expect(await commands.get('nope')).toBeUndefined();
  });

  it('records a batch at once and refuses a second command with the same id', async () => {
    await commands.insert([record('c1', 1000, { batch_id: 'b' }), record('c2', 1000, { batch_id: 'b', node_id: NODE_B })]);
    await expect(commands.insert([record('c3', 1001), record('c1', 1001)])).rejects.toThrow(/unique|duplicate/i);
    expect(await ids()).toEqual(['c2', 'c1']);
  });

  it('finds the queued and running commands (after a restart)', async () => {
    await commands.insert([record('q', 1), record('r', 2, { status: 'running' }), record('s', 3, { status: 'succeeded' }), record('x', 4, { status: 'expired' })]);
    expect((await commands.unfinished()).map((c) => c.id).sort()).toEqual(['q', 'r']);
  });

  it("keeps each replica's commands its own: found by owner, a gone owner's lost, a result stored meanwhile kept", async () => {
    const onA = new CommandsRepository(store.sql, 'replica-a');
    const onB = new CommandsRepository(store.sql, 'replica-b');
    await onA.insert([record('a-run', 1, { status: 'running', started_at: 10 }), record('a-done', 2, { status: 'running', started_at: 10 })]);
    await onB.insert([record('b-run', 3, { status: 'running', started_at: 10 })]);
    expect((await commands.unfinished('replica-a')).map((c) => c.id).sort()).toEqual(['a-done', 'a-run']);
    expect((await commands.unfinishedOwners()).sort()).toEqual(['replica-a', 'replica-b']);

    await onA.update({ ...(await onA.get('a-done'))!, status: 'succeeded', exit_code: 0, finished_at: 20, duration_ms: 10 });
    expect(await commands.loseOwnedBy('replica-a', 'replica-a stopped')).toBe(1);
    expect(await commands.get('a-run')).toMatchObject({ status: 'lost', error: 'replica-a stopped' });
    expect(await commands.get('a-done')).toMatchObject({ status: 'succeeded', exit_code: 0 });
    expect(await commands.get('b-run')).toMatchObject({ status: 'running' });
    expect(await commands.unfinishedOwners()).toEqual(['replica-b']);
  });

  it('lists newest first, filtered by node, batch, user and status, with search text in the command', async () => {
    await commands.insert([
      record('c1', 1000, { command: 'systemctl restart caméra', status: 'succeeded' }),
      record('c2', 2000, { node_id: NODE_B, batch_id: 'b', user: 'bob' }),
      record('c3', 3000, { batch_id: 'b', command: 'journalctl -u camera' }),
    ]);
    expect(await ids()).toEqual(['c3', 'c2', 'c1']);
    expect(await ids({ nodeId: NODE_A })).toEqual(['c3', 'c1']);
    expect(await ids({ batchId: 'b' })).toEqual(['c3', 'c2']);
    expect(await ids({ user: 'bob' })).toEqual(['c2']);
    expect(await ids({ status: 'succeeded' })).toEqual(['c1']);
    expect(await ids({ q: 'CAMERA' })).toEqual(['c3', 'c1']);
    expect(await ids({ q: '"restart cam"' })).toEqual(['c1']);
    expect(await ids({ q: 'camera', batchId: 'b' })).toEqual(['c3']);
    expect(await ids({ q: "'; DROP TABLE commands; --" })).toEqual([]);
  });

  it('pages by (created_at, id), also among commands created in the same millisecond', async () => {
    await commands.insert(['a', 'b', 'c', 'd', 'e'].map((id) => record(id, 5000)).concat(record('old', 4000)));
    const first = await commands.search({ limit: 2 });
    expect(first.commands.map((c) => c.id)).toEqual(['e', 'd']);
    expect(first.more).toBe(true);
    const last = first.commands.at(-1)!;
    const next = await commands.search({ limit: 10, before: { createdAt: last.created_at, id: last.id } });
    expect(next.commands.map((c) => c.id)).toEqual(['c', 'b', 'a', 'old']);
    expect(next.more).toBe(false);
    const matching = await commands.search({ limit: 2, q: 'echo', before: { createdAt: 5000, id: 'c' } });
    expect(matching.commands.map((c) => c.id)).toEqual(['b', 'a']);
    expect(matching.more).toBe(true);
  });

  it('finds matches past the first rows it reads (search over a long history)', async () => {
    await commands.insert([record('needle', 1, { command: 'find the needle' })]);
    await commands.insert(Array.from({ length: 1200 }, (_, i) => record(`n${i}`, 10 + i, { command: `noise ${i}` })));
    expect(await ids({ q: 'needle' })).toEqual(['needle']);
  });
});
