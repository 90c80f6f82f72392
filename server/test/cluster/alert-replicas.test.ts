import crypto from 'node:crypto';
import { connect } from 'nats';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertRule, AlertWebhook, Channel } from '@dvic/protocol';
import { clusterNames } from '../../src/cluster/cluster-names.js';
import { connectAgent } from '../support/simulated-agent.mjs';
import { startReceiver, type Receiver } from '../support/http-receiver.mjs';
import { testDatabase } from '../support/postgres.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';
import { NATS_URL, natsAvailable, onDatabase, postgresAvailable } from './bus-fixtures.js';

// Replicas (real servers) on one PostgreSQL database and the real NATS, with a real webhook
// receiver: alerts are judged by the leader only, and told exactly once whoever leads.

const ready = (await natsAvailable()) && (await postgresAvailable());
const SLOW = 120_000;

describe.skipIf(!ready)('alerts across replicas on a shared database', () => {
  let prefix: string;
  let database: Awaited<ReturnType<typeof testDatabase>>;
  let receiver: Receiver;
  const servers: TestServer[] = [];
  const replica = async (id: string, env: Record<string, string> = {}) => {
    const server = await startTestServer({
      DVIC_NATS_URL: NATS_URL, DVIC_NATS_PREFIX: prefix, DVIC_REPLICA_ID: id, DVIC_DATABASE_URL: database.url, DVIC_CLUSTER_LEASE_S: '1',
      DVIC_ALERT_GROUP_WAIT_MS: '100', DVIC_ALERT_GROUP_WINDOW_S: '1', ...env,
    });
    servers.push(server);
    return server;
  };
  const close = async (server: TestServer) => {
    servers.splice(servers.indexOf(server), 1);
    await server.close();
  };
  const db = <T>(work: (client: pg.Client) => Promise<T>) => onDatabase(database.url, work);
  const leaderOf = () => waitFor(() => servers.find((s) => s.app.clusterLeader?.isLeader()), 20_000, 'a leader');
  const events = () => receiver.received.map((r) => `${(r.json as AlertWebhook).event} ${(r.json as AlertWebhook).alerts.map((a) => a.summary).join(', ')}`);

  /** A webhook channel to the receiver and node_offline firing at once, made on `on`. */
  async function setUpAlerts(on: TestServer): Promise<AlertRule> {
    expect((await on.api('POST', '/api/v1/channels', { type: 'webhook', name: 'lab', url: `${receiver.url}/hook` })).json<{ channel: Channel }>().channel.id).toBeTruthy();
    const offline = (await on.api('GET', '/api/v1/alert-rules')).json<{ rules: AlertRule[] }>().rules.find((r) => r.kind === 'node_offline')!;
    expect((await on.api('PATCH', `/api/v1/alert-rules/${offline.id}`, { for_s: 0 })).statusCode).toBe(200);
    return offline;
  }

  /** A node that was online on `on` and went away. */
  async function nodeGoesOffline(on: TestServer, name: string): Promise<void> {
    const { config } = await on.enroll(name);
    const agent = await connectAgent({ url: on.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
    agent.close();
  }

  beforeEach(async () => {
    prefix = `t${crypto.randomBytes(6).toString('hex')}`;
    database = await testDatabase();
    receiver = await startReceiver();
  });

  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
    await receiver.close();
    await database.drop();
    const admin = await connect({ servers: NATS_URL });
    const jsm = await admin.jetstreamManager();
    const names = clusterNames(prefix);
    for (const stream of [`KV_${names.holdersBucket}`, names.eventsStream]) await jsm.streams.delete(stream).catch(() => false);
    await admin.close();
  }, 60_000);

  it('an alert is never stored as notified without its outbox entry: a leader whose entry could not be recorded leaves it to the next leader, which tells it', async () => {
    const a = await replica('replica-a');
    expect(await leaderOf()).toBe(a);
    await setUpAlerts(a);
    // The database refuses the leader's outbox entries (and counts the tries, outside any transaction).
    await db((c) => c.query(`CREATE SEQUENCE outbox_tries;
      CREATE FUNCTION refuse_outbox() RETURNS trigger AS $$ BEGIN PERFORM nextval('outbox_tries'); RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql;
      CREATE TRIGGER refuse_outbox BEFORE INSERT ON dvic_leader_outbox FOR EACH ROW EXECUTE FUNCTION refuse_outbox();`));
    await nodeGoesOffline(a, 'pi-hall');
    await waitFor(async () => (await db((c) => c.query('SELECT is_called FROM outbox_tries'))).rows[0].is_called, 20_000, 'the leader trying to record the notification');
    // The leader goes away before it could record it; the database accepts entries again.
    await close(a);
    await db((c) => c.query('DROP TRIGGER refuse_outbox ON dvic_leader_outbox'));

    const b = await replica('replica-b');
    expect(await leaderOf()).toBe(b);
    await receiver.waitFor((r) => (r.json as AlertWebhook).event === 'firing', 30_000);
    expect(events()).toEqual(['firing pi-hall is offline']);
  }, SLOW);
});
