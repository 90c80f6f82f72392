import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { DemoRegistry } from '../../src/live/demo-registry.js';
import { NodeRegistry } from '../../src/live/node-registry.js';
import { DemosRepository } from '../../src/repositories/demos-repository.js';
import { NodesRepository } from '../../src/repositories/nodes-repository.js';
import { ApiError } from '../../src/errors.js';
import { DeferredWrites } from '../../src/services/deferred-writes.js';
import { hardwareSample, hostSample } from '../support/hardware-sample.js';
import { memoryDb, silentLog } from '../support/memory-db.js';

let db: Db;
let sql: SqliteSql;
let deferred: DeferredWrites;
let registry: NodeRegistry;
const key = 'unused-public-key';
const make = () => {
  deferred = new DeferredWrites(() => undefined, silentLog);
  return new NodeRegistry(new NodesRepository(sql), new DemoRegistry(new DemosRepository(sql)), 60_000, deferred).load();
};

beforeEach(async () => {
  db = memoryDb();
  sql = new SqliteSql(db);
  registry = await make();
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
  it('finds a node by id, name or unique id prefix, and lists the candidates of an ambiguous prefix', async () => {
    const repository = new NodesRepository(sql);
    const ids = ['abcd1111-0000-4000-8000-000000000001', 'abcd2222-0000-4000-8000-000000000002', 'ef010000-0000-4000-8000-000000000003'];
    for (const [i, id] of ids.entries()) {
      await repository.insert({
        id, name: `pi-${i}`, labels: {}, agentConfig: {}, publicKey: key, isLocal: false, createdAt: 0, revokedAt: null, status: 'offline',
        statusSince: 0, lastSeen: null, agentVersion: null, host: null, hardware: null, hardwareAt: null,
      });
    }
    registry = await make();
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

  it('shows a change only once its transaction commits, and never one that rolled back', async () => {
    const seen: string[] = [];
    registry.on('updated', (n) => seen.push(n.name));
    const node = await registry.create({ name: 'kiosk', publicKeyPem: key });
    await expect(sql.transaction(async () => {
      await registry.update(node.id, { name: 'renamed' });
      expect(registry.view(node.id)!.name).toBe('kiosk'); // not before the commit
      throw new Error('the audit entry could not be written');
    })).rejects.toThrow(/audit/);
    expect(registry.view(node.id)!.name).toBe('kiosk');
    expect((await make()).view(node.id)!.name).toBe('kiosk');
    await sql.transaction(() => registry.update(node.id, { name: 'renamed' }));
    expect([registry.view(node.id)!.name, (await make()).view(node.id)!.name]).toEqual(['renamed', 'renamed']);
    expect(seen).toEqual(['kiosk', 'renamed']);
  });

  it('keeps a refused change out of memory: a name the database already has is refused, nothing is shown', async () => {
    const other = await make(); // another server's memory, from before the node below exists
    await registry.create({ name: 'kiosk', publicKeyPem: key });
    const added: string[] = [];
    other.on('updated', (n) => added.push(n.name));
    await expect(other.create({ name: 'kiosk', publicKeyPem: key })).rejects.toThrow(/UNIQUE|unique/);
    expect([other.list(), added]).toEqual([[], []]);
  });

  it('writes revocation, new keys and agent settings, and applies them to memory once written', async () => {
    const statuses: string[] = [];
    registry.on('status', (s) => statuses.push(`${s.status}: ${s.reason}`));
    const node = await registry.create({ name: 'pi', publicKeyPem: key });
    expect(await registry.updateAgentConfig(node.id, { metrics_interval_s: 7 })).toEqual({ metrics_interval_s: 7 });
    await registry.replaceKey(node.id, 'new-key');
    expect((await registry.revoke(node.id)).status).toBe('revoked');
    expect(statuses).toEqual(['revoked: revoked by an administrator']);
    const reloaded = await make();
    expect(reloaded.view(node.id)).toMatchObject({ status: 'revoked', agent_config: { metrics_interval_s: 7 } });
    expect([registry.get(node.id)!.publicKey, reloaded.get(node.id)!.publicKey]).toEqual(['new-key', 'new-key']);
  });

  it('writes status changes in the order they were made, and the live state in one flush', async () => {
    const node = await registry.create({ name: 'pi', publicKeyPem: key });
    const host = hostSample;
    for (let i = 0; i < 5; i++) {
      registry.markOnline(node.id, { agentVersion: String(i), host });
      registry.markOffline(node.id, 'gone');
    }
    registry.markOnline(node.id, { agentVersion: 'last', host });
    registry.recordHardware(node.id, hardwareSample);
    await deferred.settled();
    await registry.flush();
    const row = db.prepare('SELECT status, agent_version, hardware FROM nodes WHERE id = ?').get(node.id) as { status: string; agent_version: string; hardware: string };
    expect([row.status, row.agent_version, JSON.parse(row.hardware)]).toEqual(['online', 'last', hardwareSample]);
    // A server that starts has nobody connected: the node is offline there, and written so.
    expect((await make()).view(node.id)!.status).toBe('offline');
  });

  it('keeps live state it could not write and writes it on the next flush, without throwing', async () => {
    const node = await registry.create({ name: 'pi', publicKeyPem: key });
    registry.markOnline(node.id, { agentVersion: '1', host: hostSample });
    await deferred.settled();
    registry.touch(node.id);
    db.pragma('query_only = 1'); // every write fails, as on a full disk
    await expect(registry.flush()).resolves.toBeUndefined();
    db.pragma('query_only = 0');
    await registry.flush();
    expect((await make()).view(node.id)!.last_seen).toBe(registry.view(node.id)!.last_seen);
  });
});
