import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { inTransaction } from '../../src/db/transaction.js';
import { DemoRegistry } from '../../src/live/demo-registry.js';
import { NodeRegistry } from '../../src/live/node-registry.js';
import { DemosRepository } from '../../src/repositories/demos-repository.js';
import { NodesRepository } from '../../src/repositories/nodes-repository.js';
import { ApiError } from '../../src/errors.js';
import { DeferredWrites } from '../../src/services/deferred-writes.js';
import { memoryDb, silentLog } from '../support/memory-db.js';

let db: Db;
let registry: NodeRegistry;
const key = 'unused-public-key';
const make = () => new NodeRegistry(new NodesRepository(db), new DemoRegistry(new DemosRepository(db)), 60_000, new DeferredWrites(() => undefined, silentLog));

beforeEach(() => {
  db = memoryDb();
  registry = make();
});
afterEach(() => db.close());

function thrown(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

describe('node registry', () => {
  it('finds a node by id, name or unique id prefix, and lists the candidates of an ambiguous prefix', () => {
    const repository = new NodesRepository(db);
    const ids = ['abcd1111-0000-4000-8000-000000000001', 'abcd2222-0000-4000-8000-000000000002', 'ef010000-0000-4000-8000-000000000003'];
    ids.forEach((id, i) => repository.insert({
      id, name: `pi-${i}`, labels: {}, agentConfig: {}, publicKey: key, isLocal: false, createdAt: 0, revokedAt: null, status: 'offline',
      statusSince: 0, lastSeen: null, agentVersion: null, host: null, hardware: null, hardwareAt: null,
    }));
    registry = make();
    expect(registry.resolve(ids[0]!).name).toBe('pi-0');
    expect(registry.resolve('pi-1').id).toBe(ids[1]);
    expect(registry.resolve('ef01').id).toBe(ids[2]);
    expect(registry.resolve('ABCD2').id).toBe(ids[1]);
    const ambiguous = thrown(() => registry.resolve('abcd'));
    expect([ambiguous.statusCode, ambiguous.code]).toEqual([409, 'ambiguous']);
    expect(ambiguous.extras.candidates).toEqual([{ id: ids[0], name: 'pi-0' }, { id: ids[1], name: 'pi-1' }]);
    expect(thrown(() => registry.resolve('ab')).statusCode).toBe(404); // too short to be taken as a prefix
    expect(thrown(() => registry.resolve('nope')).code).toBe('not_found');
  });

  it('shows a change only once its transaction commits, and never one that rolled back', () => {
    const seen: string[] = [];
    registry.on('updated', (n) => seen.push(n.name));
    const node = registry.create({ name: 'kiosk', publicKeyPem: key });
    expect(() => inTransaction(db, () => {
      registry.update(node.id, { name: 'renamed' });
      expect(registry.view(node.id)!.name).toBe('kiosk'); // not before the commit
      throw new Error('the audit entry could not be written');
    })).toThrow(/audit/);
    expect(registry.view(node.id)!.name).toBe('kiosk');
    expect(make().view(node.id)!.name).toBe('kiosk');
    inTransaction(db, () => registry.update(node.id, { name: 'renamed' }));
    expect([registry.view(node.id)!.name, make().view(node.id)!.name]).toEqual(['renamed', 'renamed']);
    expect(seen).toEqual(['kiosk', 'renamed']);
  });

  it('keeps live state it could not write and writes it on the next flush, without throwing', () => {
    const node = registry.create({ name: 'pi', publicKeyPem: key });
    registry.markOnline(node.id, { agentVersion: '1', host: { hostname: 'pi', os: 'x', kernel: 'k', arch: 'a', boot_id: 'b', agent_version: '1' } });
    registry.touch(node.id);
    db.pragma('query_only = 1'); // every write fails, as on a full disk
    expect(() => registry.flush()).not.toThrow();
    db.pragma('query_only = 0');
    registry.flush();
    expect(make().view(node.id)!.last_seen).toBe(registry.view(node.id)!.last_seen);
  });
});
