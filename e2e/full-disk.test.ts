// The write paths besides logs, on a real small disk (tmpfs) that fills up while the server runs:
// nothing throws out of a timer or a socket event, what the server shows stays right, REST writes
// answer 507, and what waited in memory reaches the database once space is back.
import path from 'node:path';
import type { ApiTokenView, AuditEntryView, ErrorBody } from '@dvic/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectAgent } from '../server/test/support/simulated-agent.mjs';
import { canMount, mountRequired, SmallDisk } from './support/small-disk.js';
import { startTestServer, waitFor, type TestServer } from '../server/test/support/test-server.js';

// No free-space floor: the disk is full when it is (a floor would have retention give old logs up to make room,
// tested in server/test/log-retention.test.ts).
const ENV = { DVIC_MIN_FREE_MB: '0', DVIC_STORAGE_CHECK_INTERVAL_MS: '100' };

let disk: SmallDisk;
let server: TestServer;
let run = 0;

describe.skipIf(!canMount && !mountRequired)('write paths on a full disk (real tmpfs)', () => {
  beforeAll(() => { disk = SmallDisk.mount(8); });
  afterEach(async () => { await server?.close(); disk.unfill(); });
  afterAll(() => disk?.unmount());

  const start = async (dataDir = path.join(disk.dir, `data-${++run}`)) => {
    server = await startTestServer(ENV, { dataDir });
  };
  const restart = async () => {
    await server.close();
    await start(server.dataDir);
  };
  const state = async () => (await server.api('GET', '/api/v1/server/stats')).json().storage.state;
  const fillAndWait = async () => {
    disk.fill();
    await waitFor(async () => (await state()) === 'full', 5000, 'storage full');
  };
  const freeAndWait = async () => {
    disk.unfill();
    await waitFor(async () => (await state()) === 'ok', 5000, 'storage ok');
  };

  it('commands: a result arriving on a full disk is shown and stored later; a new command is refused with 507 and never sent', async () => {
    await start();
    const { config } = await server.enroll('pi');
    const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['exec'] });
    const { id } = (await server.api('POST', `/api/v1/nodes/${config.node_id}/exec`, { command: 'df -h' })).json();
    await agent.nextOf('exec.request');

    await fillAndWait();
    agent.send({ type: 'exec.output', data: { command_id: id, stream: 'stdout', seq: 0, data: 'Use% 100%\n' } });
    agent.send({ type: 'exec.result', data: { command_id: id, exit_code: 0, signal: null, duration_ms: 12 } });
    await waitFor(async () => (await server.api('GET', `/api/v1/commands/${id}`)).json().command.status === 'succeeded', 3000, 'result shown');

    let accepted = 0;
    let refused: Awaited<ReturnType<TestServer['api']>> | undefined;
    for (let i = 0; i < 300 && !refused; i++) {
      const res = await server.api('POST', `/api/v1/nodes/${config.node_id}/exec`, { command: `echo ${i}` });
      if (res.statusCode === 202) accepted++;
      else refused = res;
    }
    expect(refused?.statusCode).toBe(507);
    expect(refused?.json<ErrorBody>().error.code).toBe('storage_full');
    await new Promise((r) => setTimeout(r, 200));
    expect(agent.messages.filter((m) => m.type === 'exec.request')).toHaveLength(accepted);

    await freeAndWait();
    agent.close();
    await restart();
    expect((await server.api('GET', `/api/v1/commands/${id}`)).json().command).toMatchObject({ status: 'succeeded', exit_code: 0, stdout: 'Use% 100%\n' });
  });

  it('sessions, tokens and audit: sign-out takes effect at once, a token still reads, audit entries keep their order; all stored once there is room', async () => {
    await start();
    const token = (await server.api('POST', '/api/v1/tokens', { name: 'script' })).json().token;
    const bearer = (url: string) => server.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
    const login = async () => String((await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'admin', password: 'correct horse battery staple' } })).headers['set-cookie']).split(';')[0]!;
    const other = await login();

    await fillAndWait();
    expect((await bearer('/api/v1/nodes')).statusCode).toBe(200);
    const whileFull = await login();
    expect((await server.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: whileFull } })).statusCode).toBe(200);
    expect((await server.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { cookie: other }, payload: {} })).statusCode).toBe(204);
    expect((await server.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: other } })).statusCode).toBe(401);
    for (const name of ['a', 'b', 'c']) await server.app.inject({ method: 'POST', url: '/api/v1/nodes', payload: { name }, headers: { cookie: 'dvic_session=nope' } });

    await freeAndWait();
    await restart();
    const me = (cookie: string) => server.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie } });
    expect((await me(whileFull)).statusCode).toBe(200);
    expect((await me(other)).statusCode).toBe(401);
    const tokens = (await server.api('GET', '/api/v1/tokens')).json<{ tokens: ApiTokenView[] }>().tokens;
    expect(tokens[0]?.last_used_at).toEqual(expect.any(Number));
    const entries = (await server.api('GET', '/api/v1/audit?limit=500')).json<{ entries: AuditEntryView[] }>().entries.reverse();
    const actions = entries.map((e) => `${e.action}:${e.outcome}`);
    // In order: the sign-ins and the sign-out made while the disk was full (they waited in memory),
    // the requests without credentials (counted, written once), the sign-in after the restart.
    expect(actions.slice(-5)).toEqual(['login:ok', 'login:ok', 'logout:ok', 'auth.unauthenticated:denied', 'login:ok']);
  });
});
