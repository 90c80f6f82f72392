import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertDelivery, AlertRule, AlertWebhook, Channel } from '@dvic/protocol';
import { clusterNames } from '../../src/cluster/cluster-names.js';
import { connectAgent } from '../support/simulated-agent.mjs';
import { startReceiver, type Receiver } from '../support/http-receiver.mjs';
import { testDatabase } from '../support/postgres.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';
import { NATS_URL, natsAvailable, onDatabase, postgresAvailable, removeLabStreams } from './bus-fixtures.js';

// Replicas (real servers) on one PostgreSQL database and the real NATS, with a real webhook
// receiver: alerts are judged by the leader only, and told exactly once whoever leads.

const ready = (await natsAvailable()) && (await postgresAvailable());
const SLOW = 120_000;
const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/main.js');
const PASSWORD = 'a replica of its own process';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    }).on('error', reject);
  });
}

/** A replica as a process of its own (the built server, npm run build), to be killed with SIGKILL as a replica dies. */
interface ReplicaProcess { child: ChildProcess; baseUrl: string; cookie: string; dataDir: string }

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

  const processes: ReplicaProcess[] = [];
  async function replicaProcess(id: string, env: Record<string, string>): Promise<ReplicaProcess> {
    const port = await freePort();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-replica-'));
    const child = spawn(process.execPath, [MAIN], {
      env: {
        ...process.env, DVIC_PORT: String(port), DVIC_HOST: '127.0.0.1', DVIC_DATA_DIR: dataDir, DVIC_ADMIN_PASSWORD: PASSWORD, DVIC_LOCAL_AGENT: '0',
        DVIC_NATS_URL: NATS_URL, DVIC_NATS_PREFIX: prefix, DVIC_REPLICA_ID: id, DVIC_DATABASE_URL: database.url, DVIC_CLUSTER_LEASE_S: '1', ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const replica: ReplicaProcess = { child, baseUrl: `http://127.0.0.1:${port}`, cookie: '', dataDir };
    processes.push(replica);
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    await waitFor(() => out.includes('DVIC Demo Monitor is running'), 60_000, `replica ${id} running`).catch((err: Error) => { throw new Error(`${err.message}: ${out.slice(-2000)}`); });
    const login = await fetch(`${replica.baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
    replica.cookie = String(login.headers.get('set-cookie')).split(';')[0]!;
    return replica;
  }
  const call = async (r: ReplicaProcess, method: string, url: string, body: object = {}) => {
    const res = await fetch(`${r.baseUrl}${url}`, { method, headers: { cookie: r.cookie, 'content-type': 'application/json' }, ...(method === 'GET' ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, json: await res.json() as Record<string, unknown> };
  };

  /** Once `a` leads: a webhook channel to the receiver, node_offline firing at once, and a node on `a` that goes away. */
  async function nodeOfflineOnLeader(a: ReplicaProcess): Promise<void> {
    await waitFor(async () => (await db((c) => c.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"))).rowCount, 20_000, 'A leading');
    expect((await call(a, 'POST', '/api/v1/channels', { type: 'webhook', name: 'lab', url: `${receiver.url}/hook` })).status).toBe(201);
    const rules = (await call(a, 'GET', '/api/v1/alert-rules')).json.rules as AlertRule[];
    expect((await call(a, 'PATCH', `/api/v1/alert-rules/${rules.find((r) => r.kind === 'node_offline')!.id}`, { for_s: 0 })).status).toBe(200);
    const { config } = (await call(a, 'POST', '/api/v1/nodes', { name: 'pi-hall' })).json as { config: { node_id: string; private_key: string } };
    (await connectAgent({ url: `${a.baseUrl.replace('http', 'ws')}/api/v1/agent`, nodeId: config.node_id, privateKeyPem: config.private_key })).close();
  }

  /** Every outbox entry marked sent and no delivery pending: nothing more will be told. */
  async function allSettled(): Promise<void> {
    await waitFor(async () => (await db((c) => c.query('SELECT 1 FROM dvic_leader_outbox WHERE sent_at IS NULL'))).rowCount === 0, 20_000, 'every entry marked sent');
    await waitFor(async () => (await db((c) => c.query("SELECT 1 FROM alert_deliveries WHERE body::jsonb ->> 'status' = 'pending'"))).rowCount === 0, 20_000, 'no delivery pending');
  }

  beforeEach(async () => {
    prefix = `t${crypto.randomBytes(6).toString('hex')}`;
    database = await testDatabase();
    receiver = await startReceiver();
  });

  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
    for (const p of processes.splice(0)) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await new Promise((resolve) => p.child.once('exit', resolve));
      }
      fs.rmSync(p.dataDir, { recursive: true, force: true });
    }
    await receiver.close();
    await database.drop();
    await removeLabStreams(clusterNames(prefix));
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

  it('a leader killed (SIGKILL) while a notification waits in its group window: the next leader sends it, and the receiver gets it exactly once', async () => {
    // The first leader holds notifications 20 s in their group: it dies before it sends anything.
    const a = await replicaProcess('replica-a', { DVIC_ALERT_GROUP_WAIT_MS: '20000', DVIC_ALERT_GROUP_WINDOW_S: '30' });
    await nodeOfflineOnLeader(a);
    await waitFor(async () => (await db((c) => c.query('SELECT 1 FROM dvic_leader_outbox'))).rowCount, 20_000, 'the notification recorded');
    await new Promise((resolve) => setTimeout(resolve, 500)); // handed to the notifier's group, which waits
    a.child.kill('SIGKILL');
    await new Promise((resolve) => a.child.once('exit', resolve));
    expect(receiver.received).toEqual([]);

    const b = await replica('replica-b');
    expect(await leaderOf()).toBe(b);
    await receiver.waitFor((r) => (r.json as AlertWebhook).event === 'firing', 30_000);
    // Sent and settled everywhere: the entry marked sent, the delivery logged sent. Nothing more arrives.
    await allSettled();
    expect(events()).toEqual(['firing pi-hall is offline']);
  }, SLOW);

  it('a leader killed (SIGKILL) between storing a delivery and marking its outbox entry sent: the next leader does not tell it again', async () => {
    const a = await replicaProcess('replica-a', { DVIC_ALERT_GROUP_WAIT_MS: '100', DVIC_ALERT_GROUP_WINDOW_S: '1' });
    await waitFor(async () => (await db((c) => c.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"))).rowCount, 20_000, 'A leading');
    // Marking an entry sent waits for a lock this test holds: the leader stops right there.
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(424242)');
      await db((c) => c.query(`CREATE FUNCTION wait_for_the_test() RETURNS trigger AS $$ BEGIN PERFORM pg_advisory_xact_lock(424242); RETURN NEW; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER wait_for_the_test BEFORE UPDATE ON dvic_leader_outbox FOR EACH ROW EXECUTE FUNCTION wait_for_the_test();`));
      await nodeOfflineOnLeader(a);
      await waitFor(async () => (await db((c) => c.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))).rowCount, 20_000, 'the leader marking the entry sent');
      a.child.kill('SIGKILL');
      await new Promise((resolve) => a.child.once('exit', resolve));
    } finally {
      await holder.end();
    }
    await db((c) => c.query('DROP TRIGGER wait_for_the_test ON dvic_leader_outbox'));

    const b = await replica('replica-b');
    expect(await leaderOf()).toBe(b);
    await receiver.waitFor((r) => (r.json as AlertWebhook).event === 'firing', 30_000);
    await allSettled();
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a second message would come within the group window
    expect(events()).toEqual(['firing pi-hall is offline']);
  }, SLOW);

  it('a leader killed (SIGKILL) while a delivery waits for its retry: the next leader resumes it at its time', async () => {
    await receiver.close();
    receiver = await startReceiver({ status: (_request, count) => (count === 1 ? 500 : 200) });
    const a = await replicaProcess('replica-a', { DVIC_ALERT_GROUP_WAIT_MS: '100', DVIC_ALERT_GROUP_WINDOW_S: '1', DVIC_ALERT_RETRY_BASE_MS: '4000' });
    await nodeOfflineOnLeader(a);
    // The first attempt refused (500): the delivery is stored pending, its retry due in 4 s; the leader dies meanwhile.
    await receiver.waitFor(() => true, 20_000);
    await waitFor(async () => (await db((c) => c.query("SELECT 1 FROM alert_deliveries WHERE (body::jsonb ->> 'attempts')::int = 1 AND body::jsonb ->> 'status' = 'pending'"))).rowCount, 20_000, 'the failed attempt stored');
    a.child.kill('SIGKILL');
    await new Promise((resolve) => a.child.once('exit', resolve));

    await replica('replica-b');
    await receiver.waitFor((r) => r.at > 0, 30_000, 1);
    expect(events()).toEqual(['firing pi-hall is offline', 'firing pi-hall is offline']);
    await waitFor(async () => (await db((c) => c.query("SELECT body::jsonb ->> 'status' AS status, (body::jsonb ->> 'attempts')::int AS attempts FROM alert_deliveries"))).rows
      .every((r: { status: string; attempts: number }) => r.status === 'sent' && r.attempts === 2), 20_000, 'the delivery sent at its second attempt');
  }, SLOW);

  it('replicas starting together on a fresh database seed the default rules once, and each lists them', async () => {
    const [a, b] = await Promise.all([replica('replica-a'), replica('replica-b')]);
    const ids = async (server: TestServer) => (await server.api('GET', '/api/v1/alert-rules')).json<{ rules: AlertRule[] }>().rules.filter((r) => r.builtin).map((r) => r.id).sort();
    const stored = (await db((c) => c.query('SELECT id FROM alert_rules WHERE builtin = 1 ORDER BY id'))).rows.map((r: { id: string }) => r.id).sort();
    expect(stored.length).toBeGreaterThan(0);
    expect(await ids(a!)).toEqual(stored);
    expect(await ids(b!)).toEqual(stored);
  }, SLOW);

  /** A follower B beside leader A, the alerts set up on B (A reads them again), a node enrolled. */
  async function leaderAndFollower(rule: object = {}): Promise<{ a: TestServer; b: TestServer; config: { node_id: string; private_key: string } }> {
    const a = await replica('replica-a');
    expect(await leaderOf()).toBe(a);
    const b = await replica('replica-b');
    const offline = await setUpAlerts(b);
    if (Object.keys(rule).length) expect((await b.api('PATCH', `/api/v1/alert-rules/${offline.id}`, rule)).statusCode).toBe(200);
    await waitFor(() => a.app.alerts.config.listChannels().length === 1 && a.app.alerts.config.rule(offline.id).for_s === 0, 10_000, 'A reading the configuration made on B');
    const { config } = await a.enroll('pi-hall');
    return { a, b, config };
  }

  const connectOn = (server: TestServer, config: { node_id: string; private_key: string }) => connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });

  it('a channel test made on a follower and refused is retried by the leader (the follower runs no retries)', async () => {
    await receiver.close();
    receiver = await startReceiver({ status: (_request, count) => (count === 1 ? 500 : 200) });
    const policy = { DVIC_ALERT_DELIVERY_TIMEOUT_MS: '500', DVIC_ALERT_RETRY_BASE_MS: '100' };
    const a = await replica('replica-a', policy);
    expect(await leaderOf()).toBe(a);
    const b = await replica('replica-b', policy);
    const channel = (await b.api('POST', '/api/v1/channels', { type: 'webhook', name: 'lab', url: `${receiver.url}/hook` })).json<{ channel: Channel }>().channel;
    await waitFor(() => a.app.alerts.config.listChannels().length === 1, 10_000, 'A reading the channel made on B');
    expect((await b.api('POST', `/api/v1/channels/${channel.id}/test`)).statusCode).toBe(202);
    await receiver.waitFor(() => true, 10_000); // refused: 500
    const delivery = () => waitFor(async () => (await b.api('GET', `/api/v1/channels/${channel.id}/deliveries`)).json<{ deliveries: AlertDelivery[] }>().deliveries[0], 5000, 'the delivery');
    const sent = await waitFor(async () => { const d = await delivery(); return d.status === 'sent' && d; }, 20_000, 'the test message sent at its second attempt');
    expect(sent.attempts).toBe(2);
    expect(receiver.received).toHaveLength(2);
  }, SLOW);

  it('a mute made on a follower keeps the leader quiet; a channel and a rule changed there are used by the leader', async () => {
    const { a, b, config } = await leaderAndFollower();
    const other = (await a.enroll('pi-lab')).config;
    await waitFor(async () => (await b.api('GET', `/api/v1/nodes/${config.node_id}`)).statusCode === 200, 10_000, 'the node on B');
    const mute = await b.api('POST', '/api/v1/alert-mutes', { node: config.node_id, duration_s: 3600, reason: 'moving it' });
    expect(mute.statusCode).toBe(201);
    await waitFor(() => a.app.alerts.config.activeMutes().length === 1, 10_000, 'A reading the mute made on B');

    (await connectOn(a, config)).close();
    const muted = await waitFor(async () => (await b.api('GET', '/api/v1/alerts?state=firing')).json<{ alerts: { summary: string; muted: boolean }[] }>().alerts.find((x) => x.summary === 'pi-hall is offline'), 20_000, 'the muted alert firing');
    expect(muted.muted).toBe(true);
    // Another node, not muted, goes away after it: its message comes, the muted one's never did.
    (await connectOn(a, other)).close();
    await receiver.waitFor((r) => (r.json as AlertWebhook).event === 'firing', 30_000);
    expect(events()).toEqual(['firing pi-lab is offline']);
  }, SLOW);

  it('an ack made on a follower stops the leader\'s repeats, and the leader\'s next save keeps it', async () => {
    const { a, b, config } = await leaderAndFollower({ repeat_s: 1 });
    (await connectOn(a, config)).close();
    const firing = await receiver.waitFor((r) => (r.json as AlertWebhook).event === 'firing', 30_000);
    const alertId = (firing.json as AlertWebhook).alerts[0]!.id;
    const acked = await b.api('POST', `/api/v1/alerts/${alertId}/ack`);
    expect(acked.statusCode).toBe(200);
    const afterAck = receiver.received.length;
    // Three repeat periods: an unacknowledged alert would have been told again by now.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Back online: the leader stores the resolved alert (its next save), told once.
    const back = await connectOn(a, config);
    await receiver.waitFor((r) => (r.json as AlertWebhook).event === 'resolved', 30_000);
    back.close();
    expect(receiver.received.slice(afterAck).map((r) => (r.json as AlertWebhook).event)).toEqual(['resolved']);
    const stored = (await b.api('GET', `/api/v1/alerts/${alertId}`)).json<{ alert: { state: string; acked_by: string | null; acked_at: number | null } }>().alert;
    expect(stored).toMatchObject({ state: 'resolved', acked_by: 'admin' });
    expect(stored.acked_at).not.toBeNull();
  }, SLOW);
});
