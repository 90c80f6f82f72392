import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { LogRecordView } from '@dvic/protocol';
import { clusterNames } from '../../src/cluster/cluster-names.js';
import { LiveRecorder } from '../support/live-recorder.js';
import { connectAgent, type SimulatedAgent } from '../support/simulated-agent.mjs';
import { testDatabase } from '../support/postgres.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';
import { NATS_URL, natsAvailable, onDatabase, postgresAvailable, removeLabStreams } from './bus-fixtures.js';

// Two replicas (two real servers) on one PostgreSQL database and the real NATS: what one replica
// changes reaches the memory of the other (log follows, device tokens).

const REPLICAS_TIMEOUT_MS = 120_000;
const ready = (await natsAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('two replicas on one database', () => {
  const prefix = `t${crypto.randomBytes(6).toString('hex')}`;
  let database: Awaited<ReturnType<typeof testDatabase>>;
  let a: TestServer;
  let b: TestServer;
  const closing: (() => void)[] = [];
  const replica = (id: string) => startTestServer({
    DVIC_NATS_URL: NATS_URL, DVIC_NATS_PREFIX: prefix, DVIC_REPLICA_ID: id, DVIC_DATABASE_URL: database.url, DVIC_CLUSTER_LEASE_S: '2',
  });

  beforeAll(async () => {
    database = await testDatabase();
    a = await replica('replica-a');
    b = await replica('replica-b');
  }, REPLICAS_TIMEOUT_MS);

  afterEach(() => { for (const close of closing.splice(0)) close(); });

  afterAll(async () => {
    for (const server of [a, b]) await server?.close();
    await database?.drop();
    await removeLabStreams(clusterNames(prefix));
  }, 60_000);

  describe('log follows', () => {
    /** One demo run per node: its token names the log stream. */
    const TOKEN = 'k3JxV9mQ2pL8sT4wZ6yB1c';
    const batch = (id: string, lines: string[], from: number) => ({
      type: 'demo.logs', id,
      data: {
        token: TOKEN, demo: 'kiosk', file_generation: 0, start_offset: from * 100, end_offset: (from + lines.length) * 100,
        records: lines.map((message, i) => ({ ts: new Date().toISOString(), level: 'INFO', message, offset: (from + i) * 100 })),
      },
    });

    async function agentOn(server: TestServer, name: string): Promise<{ agent: SimulatedAgent; nodeId: string }> {
      const { config } = await a.enroll(name);
      const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
      closing.push(() => agent.close());
      return { agent, nodeId: config.node_id };
    }

    async function send(agent: SimulatedAgent, id: string, lines: string[], from: number): Promise<void> {
      agent.send(batch(id, lines, from));
      await agent.next((m: { id?: string }) => m.id === id, 20_000);
    }

    /** A follow of every line from the start (after_id 0: the database was empty), as the dashboard asks. */
    function follower(server: TestServer): LiveRecorder {
      const socket = new WebSocket(server.liveUrl, { headers: { cookie: server.cookie } });
      closing.push(() => socket.close());
      socket.on('open', () => socket.send(JSON.stringify({ type: 'logs.subscribe', id: 'all', data: { after_id: 0 } })));
      return new LiveRecorder(socket);
    }
    const linesOf = (recorder: LiveRecorder): LogRecordView[] => recorder.all('logs.records').flatMap((m) => m.data.records);
    const has = (recorder: LiveRecorder, message: string) => linesOf(recorder).some((r) => r.message === message);

    /**
     * Holds A's next insert of this node's stream after it took its id: an uncommitted row of the
     * test at the same (node, stream, offset) makes A's INSERT wait on it; rolled back, A goes on.
     */
    async function holdInsert(nodeId: string, offset: number): Promise<{ waiting: () => Promise<boolean>; release: () => Promise<void> }> {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      closing.push(() => void client.end());
      await client.query('BEGIN');
      await client.query(`INSERT INTO log_records (node_id, source, stream, "offset", ts, level, message, size) VALUES ($1, 'demo', $2, $3, 0, 20, 'held', 0)`,
        [nodeId, `demo:${TOKEN}:0`, offset]);
      const waiting = `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
      return {
        waiting: async () => ((await onDatabase(database.url, (c) => c.query(waiting))).rowCount ?? 0) > 0,
        release: async () => { await client.query('ROLLBACK'); },
      };
    }

    it('a line committed on A after a newer id committed on B reaches the followers on both replicas, each line once, in order per stream', async () => {
      const followers = { a: follower(a), b: follower(b) };
      const onA = await agentOn(a, 'pi-on-a');
      const onB = await agentOn(b, 'pi-on-b');
      await send(onA.agent, 'a1', ['a-1'], 0);
      await send(onB.agent, 'b1', ['b-1'], 0);

      // A takes the id of a-2 and waits before committing it; B commits b-2 and b-3, newer ids, meanwhile.
      const hold = await holdInsert(onA.nodeId, 100);
      onA.agent.send(batch('a2', ['a-2', 'a-3'], 1));
      await waitFor(hold.waiting, 10_000, "A's insert waiting");
      await send(onB.agent, 'b2', ['b-2', 'b-3'], 1);
      // Both followers got b-3 (on A through the bus) before a-2 is committed.
      for (const recorder of Object.values(followers)) await waitFor(() => has(recorder, 'b-3'), 10_000, 'b-3 followed');
      await hold.release();
      await onA.agent.next((m: { id?: string }) => m.id === 'a2', 20_000);

      // The last line of each replica: once a follower has it, it has all that replica sent before.
      await send(onA.agent, 'a3', ['a-4'], 3);
      await send(onB.agent, 'b3', ['b-4'], 3);
      for (const recorder of Object.values(followers)) await waitFor(() => has(recorder, 'a-4') && has(recorder, 'b-4'), 10_000, 'the last lines followed');

      const stored = (await a.api('GET', '/api/v1/logs?limit=100')).json<{ records: LogRecordView[] }>().records;
      const idOf = (message: string) => stored.find((r) => r.message === message)!.id;
      // The scenario happened: a-2 has an older id than b-2 and was committed after it.
      expect(idOf('a-2')).toBeLessThan(idOf('b-2'));
      for (const recorder of Object.values(followers)) {
        const lines = linesOf(recorder);
        expect(lines.map((r) => r.message).sort()).toEqual(['a-1', 'a-2', 'a-3', 'a-4', 'b-1', 'b-2', 'b-3', 'b-4']);
        expect(lines.filter((r) => r.node_id === onA.nodeId).map((r) => r.message)).toEqual(['a-1', 'a-2', 'a-3', 'a-4']);
        expect(lines.filter((r) => r.node_id === onB.nodeId).map((r) => r.message)).toEqual(['b-1', 'b-2', 'b-3', 'b-4']);
      }
    }, 60_000);
  });
  describe('device tokens', () => {
    const keepalive = (server: TestServer, token: string) => server.app.inject({ method: 'POST', url: `/api/v1/devices/${token}/keepalive`, payload: {} });
    const ping = (server: TestServer, token: string) => server.app.inject({ method: 'GET', url: `/ping/${token}` });

    it('a token regenerated on A works on B at once, and the old one is refused there', async () => {
      const made = (await a.api('POST', '/api/v1/devices', { name: 'esp32-hall' })).json<{ device: { id: string }; token: string }>();
      await waitFor(async () => (await keepalive(b, made.token)).statusCode === 204, 10_000, 'the first token taken on B');

      const regenerated = await a.api('POST', `/api/v1/devices/${made.device.id}/token`);
      expect(regenerated.statusCode).toBe(200);
      const { token } = regenerated.json<{ token: string }>();
      expect(token).not.toBe(made.token);
      // Committed before A answered: B takes it from the database, without waiting for the bus.
      expect((await keepalive(b, token)).statusCode).toBe(204);
      expect((await ping(b, token)).statusCode).toBe(200);
      // The old one, once A's event is on B (the bus carries no token nor hash), on both ping routes.
      await waitFor(async () => (await keepalive(b, made.token)).statusCode === 404, 10_000, 'the old token refused on B');
      expect((await ping(b, made.token)).statusCode).toBe(404);
      expect((await keepalive(a, made.token)).statusCode).toBe(404);
      expect((await keepalive(b, token)).statusCode).toBe(204);
      expect((await keepalive(a, token)).statusCode).toBe(204);
    }, 30_000);
  });
});
