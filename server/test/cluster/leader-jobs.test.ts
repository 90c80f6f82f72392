import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import type { AlertRule, AlertWebhook, Channel } from '@dvic/protocol';
import { channelEntryKey, notifyThroughOutbox, tellFromOutbox } from '../../src/cluster/alert-outbox.js';
import { runAsLeader, type LeaderJob } from '../../src/cluster/leader-jobs.js';
import { LeaderLease, NotLeaderError } from '../../src/cluster/leader-lease.js';
import { LeaderOutbox } from '../../src/cluster/leader-outbox.js';
import type { Notification } from '../../src/alerts/alert-engine.js';
import type { Sql, SqlValue } from '../../src/db/sql.js';
import { connectAgent } from '../support/simulated-agent.mjs';
import { startReceiver, type Receiver } from '../support/http-receiver.mjs';
import { testDatabase } from '../support/postgres.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';
import { createTestDatabase, onDatabase, postgresAvailable } from './bus-fixtures.js';

// Against the real PostgreSQL on 127.0.0.1:5432, in a database of this file's own.
const here = path.dirname(fileURLToPath(import.meta.url));
let database: { url: string; drop: () => Promise<void> };

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as unknown as FastifyBaseLogger;

const admin = <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => onDatabase(database.url, work);

/** A job that says when it runs. */
function recordingJob(name: string, events: string[]): LeaderJob {
  return { name, start: () => { events.push(`start ${name}`); }, stop: () => { events.push(`stop ${name}`); } };
}

/** What the outbox's fenced writes call of the server's Sql, on a connection of the test's own (? placeholders, as that Sql takes). */
function sqlOn(client: pg.Client): Pick<Sql, 'get' | 'run' | 'afterCommit'> {
  const numbered = (text: string) => { let n = 0; return text.replace(/\?/g, () => `$${++n}`); };
  const on = {
    get: async (text: string, params: SqlValue[] = []) => (await client.query(numbered(text), params)).rows[0],
    run: async (text: string, params: SqlValue[] = []) => ({ changes: (await client.query(numbered(text), params)).rowCount ?? 0 }),
    afterCommit: (fn: () => void) => fn(),
  };
  return on as unknown as Pick<Sql, 'get' | 'run' | 'afterCommit'>;
}

interface Replica { child: ChildProcess; lines: { text: string; at: number }[]; has(prefix: string): boolean }

describe.skipIf(!(await postgresAvailable()))('leader jobs and the outbox (PostgreSQL advisory lock)', () => {
  const leases: LeaderLease[] = [];
  const children: ChildProcess[] = [];
  let receiver: Receiver | undefined;
  beforeAll(async () => {
    database = await createTestDatabase();
    await admin((c) => c.query('CREATE TABLE firing (key text PRIMARY KEY, started_at bigint NOT NULL)'));
  });
  afterAll(async () => { await database?.drop(); });
  afterEach(async () => {
    await Promise.all(leases.splice(0).map((l) => l.stop()));
    for (const child of children.splice(0)) child.kill('SIGKILL');
    // The next test's outbox starts empty (a leader killed here may have left an entry unmarked).
    await admin((c) => c.query('DROP TABLE IF EXISTS dvic_leader_outbox'));
    await receiver?.close();
    receiver = undefined;
  });

  it('runs the jobs on the leader only: started in order when elected, stopped in reverse when it steps down', async () => {
    const name = `jobs-${crypto.randomUUID()}`;
    const [one, two] = [[], []] as string[][];
    const replicas = [one!, two!].map((events) => {
      const lease = new LeaderLease({ databaseUrl: database.url, name, checkMs: 200 });
      leases.push(lease);
      runAsLeader(lease, [recordingJob('alerts', events), recordingJob('retention', events)], quiet);
      lease.start();
      return { lease, events };
    });
    await waitFor(() => replicas.some((r) => r.events.length === 2), 20_000, 'a leader running its jobs');
    const leader = replicas.find((r) => r.lease.isLeader())!;
    const follower = replicas.find((r) => r !== leader)!;
    expect(leader.events).toEqual(['start alerts', 'start retention']);
    expect(follower.events).toEqual([]);
    await leader.lease.stop();
    await waitFor(() => follower.events.length === 2, 20_000, 'the other one taking over');
    expect(leader.events).toEqual(['start alerts', 'start retention', 'stop retention', 'stop alerts']);
    expect(follower.events).toEqual(['start alerts', 'start retention']);
  });

  it('a job that failed to start is undone and tried again; the jobs that need it wait, the others run; unbinding stops those that started', async () => {
    const events: string[] = [];
    const lease = new LeaderLease({ databaseUrl: database.url, name: `jobs-${crypto.randomUUID()}`, checkMs: 200 });
    leases.push(lease);
    let tries = 0;
    const flaky: LeaderJob = {
      name: 'relay', afterPrevious: true,
      start: () => { if (++tries < 3) throw new Error('the database is away'); events.push('start relay'); },
      stop: () => { events.push('stop relay'); },
    };
    const broken: LeaderJob = { name: 'broken', start: () => { throw new Error('no room'); }, stop: () => { events.push('stop broken'); } };
    const jobs = [recordingJob('deliveries', events), flaky, { ...recordingJob('engine', events), afterPrevious: true }, broken, recordingJob('rollups', events)];
    const unbind = runAsLeader(lease, jobs, quiet);
    lease.start();
    await waitFor(() => events.includes('start engine'), 20_000, 'the relay started on its third try, then the engine');
    const seen = () => events.filter((e) => e !== 'stop broken'); // the broken job is undone at each of its tries
    expect(seen()).toEqual(['start deliveries', 'stop relay', 'start rollups', 'stop relay', 'start relay', 'start engine']);
    expect(events).toContain('stop broken');
    expect(tries).toBe(3);
    const before = seen().length;
    await unbind();
    expect(seen().slice(before)).toEqual(['stop rollups', 'stop engine', 'stop relay', 'stop deliveries']);
    expect(lease.isLeader()).toBe(true); // unbinding stops the jobs, not the lease
  });

  it('an outbox entry that cannot be delivered is given up, and the ones after it go out', async () => {
    const lease = new LeaderLease({ databaseUrl: database.url, name: `outbox-${crypto.randomUUID()}`, checkMs: 1000 });
    leases.push(lease);
    const delivered: string[] = [];
    const outbox = new LeaderOutbox(lease, {
      pollMs: 200, log: quiet,
      deliver: async (payload) => {
        if (payload === 'broken') throw new Error('cannot read it');
        delivered.push(payload);
      },
    });
    runAsLeader(lease, [outbox.job()], quiet);
    lease.start();
    await waitFor(() => lease.isLeader(), 20_000, 'the leader');
    expect(await outbox.add('a', 'broken')).toBe(true);
    expect(await outbox.add('b', 'fine')).toBe(true);
    expect(await outbox.add('b', 'fine again')).toBe(false);
    await waitFor(() => delivered.length === 1, 20_000, 'the entry after the broken one');
    expect(delivered).toEqual(['fine']);
    await waitFor(async () => (await admin((c) => c.query('SELECT key FROM dvic_leader_outbox WHERE sent_at IS NULL'))).rowCount === 0, 20_000, 'both marked');
  });

  it("the outbox's fence is the lease's own lock: a session that holds another advisory lock instead records nothing", async () => {
    const lease = new LeaderLease({ databaseUrl: database.url, name: `fence-${crypto.randomUUID()}`, checkMs: 1000 });
    leases.push(lease);
    const outbox = new LeaderOutbox(lease, { pollMs: 200, log: quiet, deliver: async () => undefined });
    runAsLeader(lease, [outbox.job()], quiet);
    lease.start();
    await waitFor(() => lease.isLeader(), 20_000, 'the leader');
    await lease.asLeader(async () => undefined); // after the relay's start on the lease's session
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const sql = sqlOn(client);
      expect(await outbox.addIn(sql, 'while leading', '{}')).toBe(true);
      // An entry another leader marked sent meanwhile fails the transaction that would store its delivery again.
      expect(await outbox.addIn(sql, 'told elsewhere', '{}')).toBe(true);
      await client.query("UPDATE dvic_leader_outbox SET sent_at = 1 WHERE key = 'told elsewhere'");
      await expect(outbox.markSentIn(sql, ['while leading', 'told elsewhere'])).rejects.toThrow(/sent by another leader/);
      // The lease's session lets the lease's lock go and takes another one.
      await lease.asLeader(async (c) => {
        await c.query('SELECT pg_advisory_lock(7)');
        await c.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lease.lockKey]);
      });
      await expect(outbox.addIn(sql, 'after the lock went', '{}')).rejects.toBeInstanceOf(NotLeaderError);
      await expect(outbox.markSentIn(sql, ['while leading'])).rejects.toBeInstanceOf(NotLeaderError);
    } finally {
      await client.end();
    }
  });

  function replica(name: string, receiverUrl: string, env: Record<string, string> = {}): Replica {
    const child = spawn(process.execPath, [path.join(here, 'alert-leader.mjs'), database.url, name, receiverUrl], {
      stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env },
    });
    children.push(child);
    const lines: Replica['lines'] = [];
    let rest = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop()!;
      for (const text of parts) lines.push({ text, at: Date.now() });
    });
    return { child, lines, has: (prefix) => lines.some((l) => l.text.startsWith(prefix)) };
  }

  const keysAt = (r: Receiver) => r.received.map((req) => (req.json as { key: string }).key);

  it('a leader killed with SIGKILL: the follower takes over, rebuilds from the database, and every firing alert is notified exactly once', async () => {
    receiver = await startReceiver();
    const name = `alerts-${crypto.randomUUID()}`;
    await admin((c) => c.query('INSERT INTO firing VALUES ($1, $2)', ['demo:pi-hall:kiosk', Date.now()]));
    // The first leader sends one notification, then dies before it sends the next (HOLD_AFTER=1).
    const one = replica(name, receiver.url, { HOLD_AFTER: '1' });
    await waitFor(() => one.has('elected'), 20_000, 'the first leader');
    const two = replica(name, receiver.url);
    await waitFor(() => two.has('started'), 20_000, 'the follower running');
    await receiver.waitFor(() => true, 20_000);
    await waitFor(async () => (await admin((c) => c.query('SELECT 1 FROM dvic_leader_outbox WHERE sent_at IS NOT NULL'))).rowCount === 1, 20_000, 'the first notification marked sent');

    await admin((c) => c.query('INSERT INTO firing VALUES ($1, $2)', ['demo:pi-lab:radar', Date.now()]));
    await waitFor(() => one.has('delivering demo:pi-lab:radar'), 20_000, 'the second notification recorded, its delivery under way');
    const killedAt = Date.now();
    one.child.kill('SIGKILL');

    await waitFor(() => two.has('elected'), 30_000, 'the follower taking over');
    await waitFor(() => two.has('added demo:pi-lab:radar'), 20_000, 'the new leader judging the alerts again');
    // A third alert after the handover: the relay sends in order, so once it arrives, anything the
    // new leader would have sent again would have arrived before it.
    await admin((c) => c.query('INSERT INTO firing VALUES ($1, $2)', ['device:door', Date.now()]));
    await receiver.waitFor((r) => (r.json as { key: string }).key === 'device:door', 20_000);

    expect(keysAt(receiver)).toEqual(['demo:pi-hall:kiosk', 'demo:pi-lab:radar', 'device:door']);
    // The follower evaluated nothing before it led; the new leader's own judgment recorded nothing twice.
    const evaluating = two.lines.find((l) => l.text === 'evaluating');
    expect(evaluating!.at).toBeGreaterThanOrEqual(killedAt);
    expect(two.lines.map((l) => l.text).filter((t) => t.startsWith('added'))).toEqual([
      'added demo:pi-hall:kiosk false', 'added demo:pi-lab:radar false', 'added device:door true',
    ]);
    expect(one.lines.map((l) => l.text).filter((t) => t.startsWith('added'))).toEqual(['added demo:pi-hall:kiosk true', 'added demo:pi-lab:radar true']);
  }, 120_000);

  it("the alert engine's notifications go through the outbox: told once after commit, not again when a new leader rebuilds, never by a follower", async () => {
    receiver = await startReceiver();
    // A server on a database of its own (the outbox entries are written in the alerts' transactions).
    const own = await testDatabase();
    const server: TestServer = await startTestServer({ DVIC_DATABASE_URL: own.url, DVIC_ALERT_GROUP_WAIT_MS: '100', DVIC_ALERT_GROUP_WINDOW_S: '1' });
    const sent = async () => (await onDatabase(own.url, (c) => c.query('SELECT 1 FROM dvic_leader_outbox WHERE sent_at IS NOT NULL'))).rowCount;
    try {
      const { engine, notify, notifier, config: alertConfig } = server.app.alerts;
      const channel = (await server.api('POST', '/api/v1/channels', { type: 'webhook', name: 'lab', url: `${receiver.url}/hook` })).json<{ channel: Channel }>().channel;
      expect(channel.id).toBeTruthy();
      const offline = (await server.api('GET', '/api/v1/alert-rules')).json<{ rules: AlertRule[] }>().rules.find((r) => r.kind === 'node_offline')!;
      expect((await server.api('PATCH', `/api/v1/alert-rules/${offline.id}`, { for_s: 0 })).statusCode).toBe(200);

      const name = `alerts-${crypto.randomUUID()}`;
      // A second per check: room for a busy machine (a statement slower than 2 x checkMs ends the session).
      const lease = new LeaderLease({ databaseUrl: own.url, name, checkMs: 1000 });
      const follower = new LeaderLease({ databaseUrl: own.url, name, checkMs: 1000 });
      leases.push(lease, follower);
      const notified: Notification[] = [];
      // What went wrong on the way, said when a notification does not arrive.
      const problems: string[] = [];
      const log = { ...quiet, warn: (o: object, m: string) => problems.push(`${m} ${JSON.stringify(o)}`), error: (o: object, m: string) => problems.push(`${m} ${JSON.stringify(o)}`) } as unknown as FastifyBaseLogger;
      const told = (event: string, from = 0) => receiver!.waitFor((r) => (r.json as AlertWebhook).event === event, 30_000, from)
        .catch((err: Error) => { throw new Error(`${err.message}; engine told ${JSON.stringify(notified.map((n) => n.kind))}; ${problems.join('; ')}`); });
      const outbox = new LeaderOutbox(lease, { deliver: tellFromOutbox(notify), pollMs: 200, log });
      engine.on('notify', (n) => notified.push(n));
      const unbindNotify = notifyThroughOutbox(engine, outbox, notify, notifier, (n) => alertConfig.channelsOf(n.rule), server.app.sql);
      runAsLeader(lease, [outbox.job()], log);
      lease.start();
      await waitFor(() => lease.isLeader(), 20_000, 'the leader');
      await lease.asLeader(async () => undefined); // after the relay's start on the lease's session
      follower.start();

      const { config } = await server.enroll('pi-hall');
      const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
      agent.close();
      const firing = await told('firing');
      expect((firing.json as AlertWebhook).alerts.map((a) => a.summary)).toEqual(['pi-hall is offline']);
      await waitFor(async () => (await sent()) === 1, 20_000, 'marked sent');

      // A new leader rebuilds from the database: the firing alert is adopted, not told again; what it
      // would record again has the same key; a follower records nothing.
      engine.stop();
      engine.start();
      expect(await outbox.add(channelEntryKey(notified[0]!, channel.id), JSON.stringify({ channel_id: channel.id, notification: notified[0] }))).toBe(false);
      const followerOutbox = new LeaderOutbox(follower, { deliver: tellFromOutbox(notify), pollMs: 200, log: quiet });
      await expect(followerOutbox.add('alert|firing|other', '{}')).rejects.toBeInstanceOf(NotLeaderError);

      // Back online: the alert resolves, told once too; then nothing more.
      const back = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
      await told('resolved');
      back.close();
      await told('firing', 2);
      expect(receiver.received.map((r) => (r.json as AlertWebhook).event)).toEqual(['firing', 'resolved', 'firing']);
      expect(notified.map((n) => n.kind)).toEqual(['firing', 'resolved', 'firing']);
      unbindNotify();
    } finally {
      await server.close();
      await own.drop();
    }
  }, 120_000);
});
