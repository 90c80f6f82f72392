import crypto from 'node:crypto';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterNames } from '../../src/cluster/cluster-names.js';
import { testDatabase } from '../support/postgres.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';
import { NATS_URL, natsAvailable, postgresAvailable } from './bus-fixtures.js';

// Two replicas (two real servers) on one PostgreSQL database and the real NATS: the cluster-state
// plugin's leader lease decides which one runs the leader's work.

const REPLICAS_TIMEOUT_MS = 120_000;
const ready = (await natsAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('cluster state on a shared database', () => {
  const prefix = `t${crypto.randomBytes(6).toString('hex')}`;
  let database: Awaited<ReturnType<typeof testDatabase>>;
  const servers: TestServer[] = [];
  const replica = (id: string) => startTestServer({
    DVIC_NATS_URL: NATS_URL, DVIC_NATS_PREFIX: prefix, DVIC_REPLICA_ID: id, DVIC_DATABASE_URL: database.url,
  });

  beforeAll(async () => {
    database = await testDatabase();
    servers.push(await replica('replica-a'));
    servers.push(await replica('replica-b'));
  }, REPLICAS_TIMEOUT_MS);

  afterAll(async () => {
    for (const server of servers) await server.close();
    await database?.drop();
    const admin = await connect({ servers: NATS_URL });
    const jsm = await admin.jetstreamManager();
    const names = clusterNames(prefix);
    for (const stream of [`KV_${names.holdersBucket}`, names.eventsStream]) await jsm.streams.delete(stream).catch(() => false);
    await admin.close();
  }, 60_000);

  const leaders = () => servers.filter((s) => s.app.clusterLeader?.isLeader());

  it('exactly one replica leads, and the other takes over when it stops', async () => {
    await waitFor(() => leaders().length === 1, 15_000, 'a leader');
    const [leader] = leaders();
    const follower = servers.find((s) => s !== leader)!;
    expect(follower.app.clusterLeader?.isLeader()).toBe(false);
    // An orderly stop gives the lock up at once: the follower takes it at its next try.
    await leader!.close();
    servers.splice(servers.indexOf(leader!), 1);
    await waitFor(() => follower.app.clusterLeader?.isLeader(), 15_000, 'the follower to lead');
  }, 60_000);

});
