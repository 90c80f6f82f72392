// The real server on a real small disk (tmpfs) that fills up: it stays up, refuses what it cannot
// store with an answer the sender understands, shows the state, and recovers when space is back.
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openDatabase } from '../server/src/db/database.js';
import { migrations } from '../server/src/db/migrations/index.js';
import type { LiveMessage } from '@dvic/protocol';
import { connectAgent } from '../server/test/support/simulated-agent.mjs';
import { call, enroll, failure, getNode, session, signIn, type Api } from './support/api.js';
import { startServer, stopAll, waitFor, type ServerProcess } from './support/processes.js';
import { canMount, mountRequired, SmallDisk } from './support/small-disk.js';

// No free-space floor: the disk is full when it is (a floor would have retention give old logs up to make room,
// tested in server/test/log-retention.test.ts).
const ENV = { DVIC_MIN_FREE_MB: '0', DVIC_FLUSH_INTERVAL_MS: '100', DVIC_STORAGE_CHECK_INTERVAL_MS: '100' };

const T0 = Date.now();

/** A demo.logs batch of `count` lines starting at line `from`, written from T0 on (recent: age retention keeps them). */
function logBatch(id: string, from: number, count: number) {
  const records = Array.from({ length: count }, (_, k) => ({ ts: new Date(T0 + from + k).toISOString(), level: 'INFO', message: `disk line ${from + k}`, offset: (from + k) * 100 }));
  return { type: 'demo.logs', id, data: { token: 'k3JxV9mQ2pL8sT4wZ6yB1c', demo: 'filler-demo', file_generation: 0, start_offset: from * 100, end_offset: (from + count) * 100, records } };
}

/** A dashboard's live socket: every message it received, in order. */
async function liveMessages(server: ServerProcess, cookie: string): Promise<{ messages: LiveMessage[]; close(): void }> {
  const ws = new WebSocket(`${server.baseUrl.replace('http', 'ws')}/api/v1/live`, { headers: { cookie } });
  const messages: LiveMessage[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as LiveMessage));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  await waitFor(() => messages.length > 0, 5000, 'the snapshot');
  return { messages, close: () => ws.close() };
}

/**
 * Enrolls nodes until the disk refuses one (bounded). Small writes may still fit in room SQLite
 * already holds (its WAL file): the first one that needs more is refused.
 */
/** Repeats a write (the i-th) until the server refuses it: how it refused, and how many passed before. */
async function untilRefused(write: (i: number) => Promise<unknown>): Promise<{ status: number; code: string; message: string; passed: number }> {
  for (let i = 0; i < 500; i++) {
    const refused = await failure(write(i)).catch(() => null);
    if (refused) return { ...refused, passed: i };
  }
  throw new Error('500 writes stored on a full disk');
}

const enrollUntilRefused = (api: Api) => untilRefused((i) => enroll(api, `while-full-${i}`));

const storageState = async (api: Api) => (await call(api.GET('/api/v1/server/stats'))).storage.state;

async function onlineAgent(server: ServerProcess, config: { node_id: string; private_key: string }) {
  return connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
}

describe.skipIf(!canMount && !mountRequired)('a full disk (real tmpfs)', () => {
  let disk: SmallDisk;
  beforeAll(() => { disk = SmallDisk.mount(8); });
  afterEach(async () => { await stopAll(); disk.unfill(); });
  afterAll(async () => { await stopAll(); disk?.unmount(); });

  it('keeps the server up: logs answered logs.nack storage_full, writes 507, reads and sign-in work, state full; all recovers when space is freed', async () => {
    const server = await startServer({ dataDir: path.join(disk.dir, 'data'), env: ENV });
    const { api, cookie } = await session(server.baseUrl);
    const { node, config } = await enroll(api, 'pi');
    const agent = await onlineAgent(server, config);
    agent.send(logBatch('before', 0, 10));
    expect(await agent.next((m) => m.id === 'before')).toMatchObject({ type: 'logs.ack', data: { stored: 10 } });
    const live = await liveMessages(server, cookie);
    const snapshot = live.messages[0];
    expect(snapshot?.type === 'snapshot' && snapshot.data.server.storage.state).toBe('ok');

    disk.fill();
    // Hardware keeps arriving and is flushed every 100 ms: each flush now meets a full disk.
    for (let i = 0; i < 5; i++) {
      agent.sendHardware({ ts: Date.now(), processes: 300 + i });
      await new Promise((r) => setTimeout(r, 150));
    }
    await waitFor(async () => (await storageState(api)) === 'full', 10_000, 'storage state full');
    expect(server.child.exitCode).toBeNull();
    await waitFor(() => live.messages.some((m) => m.type === 'server.status' && m.data.storage.state === 'full'), 5000, 'server.status full on the live socket');

    agent.send(logBatch('during', 10, 10));
    expect(await agent.next((m) => m.id === 'during')).toMatchObject({ type: 'logs.nack', data: { code: 'storage_full' } });
    agent.send({ type: 'demo.state', data: { full: true, demos: [{ token: 'k3JxV9mQ2pL8sT4wZ6yB1c', demo: 'filler-demo', pid: 42, alive: true }] } });

    // Reads work; a write answers 507 with a clear error; a new sign-in works.
    expect(await getNode(api, node.id)).toMatchObject({ status: 'online', hardware: { processes: 304 } });
    expect((await call(api.GET('/api/v1/logs', { params: { query: { demo: 'filler-demo' } } }))).records).toHaveLength(10);
    const refused = await enrollUntilRefused(api);
    expect(refused).toMatchObject({ status: 507, code: 'storage_full', message: expect.stringMatching(/disk is full/) });
    // Another kind of write is refused too (one that fits in a page the database still has free may pass first).
    expect((await untilRefused((i) => call(api.POST('/api/v1/tokens', { body: { name: `script-${i}` } })))).status).toBe(507);
    const signedInWhileFull = await signIn(server.baseUrl);
    expect((await call(signedInWhileFull.GET('/api/v1/auth/me'))).user.username).toBe('admin');
    expect(server.child.exitCode).toBeNull();

    disk.unfill();
    await waitFor(async () => (await storageState(api)) === 'ok', 10_000, 'storage state ok again');
    await waitFor(() => live.messages.some((m) => m.type === 'server.status' && m.data.storage.state === 'ok'), 5000, 'server.status ok on the live socket');
    agent.send(logBatch('after', 10, 10));
    expect(await agent.next((m) => m.id === 'after')).toMatchObject({ type: 'logs.ack', data: { stored: 10 } });
    expect((await enroll(api, 'pi-2')).node.name).toBe('pi-2');
    live.close();
    agent.close();
    await waitFor(async () => (await getNode(api, node.id)).status === 'offline', 5000, 'node offline');

    // What was kept in memory while the disk was full reached the database: it survives a restart.
    await server.kill();
    const again = await startServer({ dataDir: server.dataDir, port: server.port, env: ENV });
    const after = await getNode(signedInWhileFull, node.id);
    expect(after).toMatchObject({ status: 'offline', hardware: { processes: 304 } });
    expect(after.demos).toEqual([expect.objectContaining({ pid: 42, line_count: 20 })]);
    expect((await call(api.GET('/api/v1/logs', { params: { query: { demo: 'filler-demo', limit: 100 } } }))).records).toHaveLength(20);
    await again.kill();
  });

  it('starts on an already full disk: reads and sign-in work, writes 507, logs refused; recovers when space is freed', async () => {
    const first = await startServer({ dataDir: path.join(disk.dir, 'data2'), env: ENV });
    const { node, config } = await enroll(await signIn(first.baseUrl), 'pi');
    await first.kill();
    disk.fill();

    // With the local agent, whose config file cannot be written yet either.
    const server = await startServer({ dataDir: first.dataDir, port: first.port, env: { ...ENV, DVIC_LOCAL_AGENT: '1' } });
    const api = await signIn(server.baseUrl);
    expect(await storageState(api)).toBe('full');
    expect((await call(api.GET('/api/v1/nodes'))).nodes.map((n) => n.name)).toEqual(['pi']);
    expect((await enrollUntilRefused(api)).code).toBe('storage_full');
    const agent = await onlineAgent(server, config);
    agent.send(logBatch('full-start', 0, 5));
    expect(await agent.next((m) => m.id === 'full-start')).toMatchObject({ type: 'logs.nack', data: { code: 'storage_full' } });
    expect((await getNode(api, node.id)).status).toBe('online');

    disk.unfill();
    await waitFor(async () => (await storageState(api)) === 'ok', 10_000, 'storage state ok again');
    agent.send(logBatch('full-start-again', 0, 5));
    expect(await agent.next((m) => m.id === 'full-start-again')).toMatchObject({ type: 'logs.ack', data: { stored: 5 } });
    expect((await enroll(api, 'pi-2')).node.name).toBe('pi-2');
    expect((await call(api.GET('/api/v1/logs', { params: { query: { q: 'disk' } } }))).records).toHaveLength(5);
    // The operator sees it in the server's log: shared-memory file, checkpoints and indexing are back.
    await waitFor(() => server.output.includes('the database is back to normal'), 5000, 'normal mode');
    await waitFor(async () => (await call(api.GET('/api/v1/nodes'))).nodes.some((n) => n.is_local && n.status === 'online'), 30_000, 'the local agent started once there was room');
    expect(server.child.exitCode).toBeNull();
    agent.close();
  });

  it('exits with code 75 and a clear message when the full disk refuses a schema change at start, the database untouched; starts once there is room', async () => {
    const dataDir = path.join(disk.dir, 'data3');
    const previous = openDatabase(path.join(dataDir, 'dvic.sqlite'), migrations.slice(0, -1)); // the release before this one
    previous.close();
    disk.fill();
    await expect(startServer({ dataDir, env: ENV })).rejects.toThrow(/exited \(code 75[\s\S]*needs a schema update \(version \d+ to \d+\)[\s\S]*disk is full[\s\S]*Free some space on that disk and start again/);
    const untouched = openDatabase(path.join(dataDir, 'dvic.sqlite'), [], { exclusive: true });
    expect(untouched.pragma('user_version', { simple: true })).toBe(migrations.at(-2)!.version);
    untouched.close();

    disk.unfill();
    const server = await startServer({ dataDir, env: ENV });
    expect(await storageState(await signIn(server.baseUrl))).toBe('ok');
  });
});
