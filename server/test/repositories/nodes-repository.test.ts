import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NodesRepository, type NodeRecord } from '../../src/repositories/nodes-repository.js';
import { hardwareSample, hostSample } from '../support/hardware-sample.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

const node = (id: string, name: string, extra: Partial<NodeRecord> = {}): NodeRecord => ({
  id, name, labels: { room: 'hall' }, agentConfig: {}, publicKey: `key-${id}`, isLocal: false, createdAt: 1_764_000_000_000, revokedAt: null,
  status: 'offline', statusSince: 1_764_000_000_000, lastSeen: null, agentVersion: null, host: null, hardware: null, hardwareAt: null, ...extra,
});

describe.each(storeKinds)('nodes repository on $name', (kind) => {
  let store: StoreUnderTest;
  let nodes: NodesRepository;
  beforeEach(async () => {
    store = await kind.open();
    nodes = new NodesRepository(store.sql);
  });
  afterEach(() => store.close());

  it('inserts nodes and reads them back as they were, ordered by name', async () => {
    await nodes.insert(node('b0000000-0000-4000-8000-000000000002', 'zeta', { isLocal: true }));
    await nodes.insert(node('a0000000-0000-4000-8000-000000000001', 'alpha'));
    const all = await nodes.all();
    expect(all.map((n) => n.name)).toEqual(['alpha', 'zeta']);
    expect(all[1]).toEqual(node('b0000000-0000-4000-8000-000000000002', 'zeta', { isLocal: true }));
  });

  it('refuses a second node with the same name', async () => {
    await nodes.insert(node('a0000000-0000-4000-8000-000000000001', 'pi'));
    await expect(nodes.insert(node('a0000000-0000-4000-8000-000000000002', 'pi'))).rejects.toThrow();
    expect(await nodes.all()).toHaveLength(1);
  });

  it('updates identity, agent settings, key and status, each leaving the rest alone', async () => {
    const id = 'a0000000-0000-4000-8000-000000000001';
    await nodes.insert(node(id, 'pi'));
    await nodes.updateIdentity(id, 'kiosk', { room: 'lab', floor: '2' });
    await nodes.updateAgentConfig(id, { metrics_interval_s: 10 });
    await nodes.updatePublicKey(id, 'new-key');
    await nodes.updateStatus({ id, status: 'online', statusSince: 5, lastSeen: 6, revokedAt: null, agentVersion: '0.3.0', host: hostSample });
    expect(await nodes.get(id)).toEqual(node(id, 'kiosk', {
      labels: { room: 'lab', floor: '2' }, agentConfig: { metrics_interval_s: 10 }, publicKey: 'new-key',
      status: 'online', statusSince: 5, lastSeen: 6, agentVersion: '0.3.0', host: hostSample,
    }));
    await nodes.updateStatus({ id, status: 'revoked', statusSince: 7, lastSeen: 6, revokedAt: 7, agentVersion: '0.3.0', host: null });
    expect(await nodes.get(id)).toMatchObject({ status: 'revoked', revokedAt: 7, host: null });
    // A status write made before the revocation and run after it does not undo it.
    await nodes.updateStatus({ id, status: 'online', statusSince: 8, lastSeen: 8, revokedAt: null, agentVersion: '0.3.0', host: hostSample });
    expect(await nodes.get(id)).toMatchObject({ status: 'revoked', revokedAt: 7, host: null });
  });

  it('flushes the live state of many nodes in one batch', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `a0000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    for (const [i, id] of ids.entries()) await nodes.insert(node(id, `pi-${i}`));
    await nodes.flushLiveState(ids.map((id, i) => ({ id, lastSeen: 1000 + i, hardware: i % 2 ? hardwareSample : null, hardwareAt: i % 2 ? 2000 + i : null })));
    const byId = new Map((await nodes.all()).map((n) => [n.id, n]));
    expect(byId.get(ids[7]!)).toMatchObject({ lastSeen: 1007, hardware: hardwareSample, hardwareAt: 2007 });
    expect(byId.get(ids[8]!)).toMatchObject({ lastSeen: 1008, hardware: null, hardwareAt: null });
    await nodes.flushLiveState([]);
    expect(await nodes.get('no-such-node')).toBeUndefined();
  });

  it('keeps integers as numbers (ms timestamps need more than 32 bits)', async () => {
    const id = 'a0000000-0000-4000-8000-000000000001';
    await nodes.insert(node(id, 'pi', { createdAt: 4_102_444_800_000 }));
    const read = await nodes.get(id);
    expect(typeof read!.createdAt).toBe('number');
    expect(read!.createdAt).toBe(4_102_444_800_000);
  });
});
