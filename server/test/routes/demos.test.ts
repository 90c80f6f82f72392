import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { LabDemo } from '@dvic/protocol';
import { connectAgent } from '../support/simulated-agent.mjs';
import { LiveRecorder } from '../support/live-recorder.js';
import { hashPassword } from '../../src/services/passwords.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

let server: TestServer;
beforeEach(async () => { server = await startTestServer({ DVIC_LAB_TIMEZONE: 'Europe/Paris' }); });
afterEach(async () => { await server.close(); });

const token = (i: number) => `tok${String(i).padStart(3, '0')}aaaaaaaaaaaaaaaa`;

async function onlineAgent(name: string, labels?: Record<string, string>) {
  const { config } = await server.enroll(name, labels);
  const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['hardware', 'exec'] });
  return { agent, nodeId: config.node_id };
}

const run = (i: number, alive: boolean, name = 'kiosk', startedAt = Date.now() - 60_000) => ({
  token: token(i), demo: name, pid: 100 + i, alive, started_at: new Date(startedAt).toISOString(),
  ...(alive ? {} : { exited_at: new Date(startedAt + 1000).toISOString() }),
});

/** A closing record, as the libraries write it on a clean exit or SIGTERM. */
const closing = (i: number, ended: 'exited' | 'killed', code?: number, name = 'kiosk') => ({
  type: 'demo.logs', id: `close-${i}`,
  data: {
    token: token(i), demo: name, file_generation: 0, start_offset: 0, end_offset: 100,
    records: [{ ts: new Date().toISOString(), level: 'INFO', message: 'demo ended', offset: 0, fields: { dvic_end: ended, ...(code === undefined ? {} : { exit_code: code }) } }],
  },
});

const list = async (query = ''): Promise<LabDemo[]> => (await server.api('GET', `/api/v1/demos${query}`)).json().demos;

describe('GET /api/v1/demos', () => {
  it('gathers the runs of one demo: three runs, two restarts, one demo, never three dead rows', async () => {
    const { agent, nodeId } = await onlineAgent('pi');
    const t0 = Date.now() - 3_600_000;
    agent.send({ type: 'demo.state', data: { full: true, demos: [run(1, false, 'kiosk', t0), run(2, false, 'kiosk', t0 + 60_000), run(3, true, 'kiosk', t0 + 120_000)] } });
    const [demo] = await waitFor(async () => ((await list()).length === 1 && (await list())[0]!.runs.length === 3 ? list() : null), 5000, 'three runs');
    expect(demo).toMatchObject({ node_id: nodeId, name: 'kiosk', state: 'running', restarts: 2, down: false, expected: false });
    expect(demo!.runs.map((r) => r.token)).toEqual([token(3), token(2), token(1)]);
    expect(demo!.runs[1]).toMatchObject({ alive: false, ended: 'vanished' });
    const one = (await server.api('GET', `/api/v1/demos/${demo!.id}`)).json().demo;
    expect(one).toMatchObject({ id: demo!.id, name: 'kiosk', restarts: 2 });
    expect(one.runs).toHaveLength(3);
  });

  it('tells a clean stop (closing record) from a crash, and a quick new run as restarting', async () => {
    const { agent } = await onlineAgent('pi');
    agent.send({ type: 'demo.state', data: { full: true, demos: [run(1, true, 'clean'), run(2, true, 'crashy'), run(3, true, 'failing')] } });
    await waitFor(async () => (await list()).length === 3, 5000, 'three demos');
    agent.send(closing(1, 'killed', undefined, 'clean'));
    agent.send(closing(3, 'exited', 3, 'failing'));
    await waitFor(async () => (await list()).find((d) => d.name === 'failing')?.runs[0]?.exit_code === 3, 5000, 'closing records');
    agent.send({ type: 'demo.state', data: { full: true, demos: [] } });
    const byName = async () => new Map((await list()).map((d) => [d.name, d]));
    await waitFor(async () => (await byName()).get('clean')?.state === 'stopped', 5000, 'stopped');
    const demos = await byName();
    expect(demos.get('clean')).toMatchObject({ state: 'stopped', line_count: 0 }); // the closing record is not a line
    expect(demos.get('clean')!.runs[0]).toMatchObject({ ended: 'killed' });
    expect(demos.get('crashy')).toMatchObject({ state: 'crashed' });
    expect(demos.get('crashy')!.runs[0]).toMatchObject({ ended: 'vanished' });
    expect(demos.get('failing')).toMatchObject({ state: 'crashed' });
    agent.send({ type: 'demo.state', data: { full: false, demos: [{ ...run(4, true, 'crashy', Date.now()) }] } });
    await waitFor(async () => (await byName()).get('crashy')?.state === 'restarting', 5000, 'restarting');
    expect((await byName()).get('crashy')).toMatchObject({ restarts: 1, restarts_today: 1 });
  });

  it('marks an expected demo that is not running as down, pushed live; outside its schedule it is not down', async () => {
    const { agent } = await onlineAgent('pi');
    const live = new WebSocket(server.liveUrl, { headers: { cookie: server.cookie } });
    const recorder = new LiveRecorder(live);
    await waitFor(() => recorder.first('snapshot'), 3000, 'snapshot');
    agent.send({ type: 'demo.state', data: { full: true, demos: [run(1, true)] } });
    const [demo] = await waitFor(async () => ((await list()).length ? list() : null), 5000, 'demo');
    const patched = await server.api('PATCH', `/api/v1/demos/${demo!.id}`, { expected: true, notes: 'hall screen' });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().demo).toMatchObject({ expected: true, expected_by: 'demo', notes: 'hall screen', down: false });
    agent.send({ type: 'demo.state', data: { full: true, demos: [] } });
    const downEvent = await waitFor(() => recorder.all('demo.updated').flatMap((m) => m.data.demos).find((d) => d.id === demo!.id && d.down), 5000, 'demo.updated down');
    expect(downEvent).toMatchObject({ state: 'crashed', down: true });
    expect((await list('?down=true')).map((d) => d.id)).toEqual([demo!.id]);

    // A schedule that is closed now (lab time): not down. One that is open now: down.
    const hour = Number(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', hourCycle: 'h23' }).format(new Date()));
    const all = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
    const hh = (h: number) => `${String(h % 24).padStart(2, '0')}:00`;
    const closed = { days: all, open: hh(hour + 2), close: hh(hour + 3) };
    const res = await server.api('PATCH', `/api/v1/demos/${demo!.id}`, { schedule: closed });
    expect(res.json().demo).toMatchObject({ expected: true, in_schedule: false, down: false, schedule: closed });
    const open = { days: all, open: '00:00', close: '24:00' };
    expect((await server.api('PATCH', `/api/v1/demos/${demo!.id}`, { schedule: open })).json().demo).toMatchObject({ in_schedule: true, down: true });
    live.close();
  });

  it('does not count a demo of a revoked node as down', async () => {
    const { agent, nodeId } = await onlineAgent('pi');
    agent.send({ type: 'demo.state', data: { full: true, demos: [run(1, false)] } });
    const [demo] = await waitFor(async () => ((await list()).length ? list() : null), 5000, 'demo');
    expect((await server.api('PATCH', `/api/v1/demos/${demo!.id}`, { expected: true })).json().demo.down).toBe(true);
    await server.api('POST', `/api/v1/nodes/${nodeId}/revoke`, {});
    await waitFor(async () => (await list())[0]!.down === false, 5000, 'not down once revoked');
  });

  it('forgets (dismisses) a stopped demo; refuses a running one; its logs stay (the closing record is not a line)', async () => {
    const { agent } = await onlineAgent('pi');
    agent.send({ type: 'demo.state', data: { full: true, demos: [run(1, false, 'old'), run(2, true, 'live')] } });
    agent.send({ ...closing(1, 'exited', 0, 'old'), id: 'words', data: { ...closing(1, 'exited', 0, 'old').data, start_offset: 0, end_offset: 200,
      records: [{ ts: new Date().toISOString(), level: 'INFO', message: 'last words', offset: 0 }, { ...closing(1, 'exited', 0, 'old').data.records[0]!, offset: 100 }] } });
    await waitFor(async () => (await list()).length === 2 && (await list()).find((d) => d.name === 'old')?.state === 'stopped', 5000, 'two demos');
    const byName = new Map((await list()).map((d) => [d.name, d]));
    expect(byName.get('old')).toMatchObject({ state: 'stopped', expected: false, down: false });
    const refused = await server.api('DELETE', `/api/v1/demos/${byName.get('live')!.id}`);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toMatch(/running/);
    expect((await server.api('DELETE', `/api/v1/demos/${byName.get('old')!.id}`)).statusCode).toBe(200);
    expect((await list()).map((d) => d.name)).toEqual(['live']);
    expect((await server.api('GET', `/api/v1/demos/${byName.get('old')!.id}`)).statusCode).toBe(404);
    const logs = (await server.api('GET', '/api/v1/logs?demo=old')).json().records;
    expect(logs.map((r: { message: string }) => r.message)).toEqual(['last words']);
  });

  it('filters by node, state and label, and answers bad input with a clear 400 or 404', async () => {
    const { agent: hall } = await onlineAgent('hall-pi', { room: 'hall' });
    const { agent: lab } = await onlineAgent('lab-pi', { room: 'lab' });
    hall.send({ type: 'demo.state', data: { full: true, demos: [run(1, true, 'kiosk')] } });
    lab.send({ type: 'demo.state', data: { full: true, demos: [run(2, false, 'robot')] } });
    await waitFor(async () => (await list()).length === 2, 5000, 'two demos');
    expect((await list('?label=room%3Dhall')).map((d) => d.name)).toEqual(['kiosk']);
    expect((await list('?node=lab-pi')).map((d) => d.name)).toEqual(['robot']);
    expect((await list('?state=running')).map((d) => d.name)).toEqual(['kiosk']);
    const id = (await list('?node=lab-pi'))[0]!.id;
    for (const [method, url, body, status] of [
      ['GET', '/api/v1/demos?state=sleeping', undefined, 400],
      ['GET', '/api/v1/demos/not-a-uuid', undefined, 400],
      ['GET', '/api/v1/demos/0a1b2c3d-0000-4000-8000-000000000099', undefined, 404],
      ['PATCH', `/api/v1/demos/${id}`, { expected: 'yes' }, 400],
      ['PATCH', `/api/v1/demos/${id}`, { schedule: { days: ['someday'], open: '09:00', close: '18:00' } }, 400],
      ['PATCH', `/api/v1/demos/${id}`, { schedule: { days: ['mon'], open: '25:00', close: '18:00' } }, 400],
      ['PATCH', `/api/v1/demos/${id}`, { owner: 'me' }, 400],
      ['PATCH', `/api/v1/demos/${id}`, { notes: 'x'.repeat(3000) }, 400],
    ] as const) {
      const res = await server.api(method, url, body);
      expect(res.statusCode, `${method} ${url} ${JSON.stringify(body)}`).toBe(status);
      expect(res.json().error.message.length).toBeGreaterThan(0);
    }
  });

  it('keeps demo ids, expected flags and how runs ended across a restart', async () => {
    const { agent } = await onlineAgent('pi');
    agent.send({ type: 'demo.state', data: { full: true, demos: [run(1, false)] } });
    agent.send(closing(1, 'exited', 0));
    const [demo] = await waitFor(async () => ((await list())[0]?.runs[0]?.ended === 'exited' ? list() : null), 5000, 'demo');
    await server.api('PATCH', `/api/v1/demos/${demo!.id}`, { expected: true, schedule: { days: ['mon'], open: '09:00', close: '18:00' } });
    agent.close();
    await server.restart();
    const [after] = await list();
    expect(after).toMatchObject({ id: demo!.id, expected: true, schedule: { days: ['mon'], open: '09:00', close: '18:00' }, state: 'stopped' });
    expect(after!.runs[0]).toMatchObject({ ended: 'exited', exit_code: 0 });
  });

  it('expects a demo on every node with a label: one that never ran it shows it down; others are not concerned', async () => {
    const { agent: hall } = await onlineAgent('hall-pi', { room: 'hall' });
    await onlineAgent('hall-pi2', { room: 'hall' });
    await onlineAgent('lab-pi', { room: 'lab' });
    hall.send({ type: 'demo.state', data: { full: true, demos: [run(1, true, 'kiosk')] } });
    await waitFor(async () => (await list()).length === 1, 5000, 'the running kiosk');
    const created = await server.api('POST', '/api/v1/demo-expectations', { label: 'room=hall', name: 'kiosk' });
    expect(created.statusCode).toBe(201);
    const rule = created.json().expectation;
    expect(rule).toMatchObject({ label_key: 'room', label_value: 'hall', name: 'kiosk', schedule: null });
    expect((await server.api('POST', '/api/v1/demo-expectations', { label: 'room=hall', name: 'kiosk' })).statusCode).toBe(409);
    expect((await server.api('POST', '/api/v1/demo-expectations', { label: 'no equals', name: 'kiosk' })).statusCode).toBe(400);
    const nodeName = new Map((await server.api('GET', '/api/v1/nodes')).json().nodes.map((n: { id: string; name: string }) => [n.id, n.name]));
    const demos = (await list()).map((d) => ({ node: nodeName.get(d.node_id), state: d.state, down: d.down, expected_by: d.expected_by, runs: d.runs.length }));
    expect(demos).toEqual([
      { node: 'hall-pi2', state: 'stopped', down: true, expected_by: 'label', runs: 0 },
      { node: 'hall-pi', state: 'running', down: false, expected_by: 'label', runs: 1 },
    ]);
    // A node relabelled into the hall is expected to run it too.
    const lab = (await server.api('GET', '/api/v1/nodes/lab-pi')).json().node;
    await server.api('PATCH', `/api/v1/nodes/${lab.id}`, { labels: { room: 'hall' } });
    expect((await list('?down=true')).map((d) => nodeName.get(d.node_id)).sort()).toEqual(['hall-pi2', 'lab-pi']);
    expect((await server.api('GET', '/api/v1/demo-expectations')).json().expectations).toHaveLength(1);
    expect((await server.api('DELETE', `/api/v1/demo-expectations/${rule.id}`)).statusCode).toBe(200);
    expect(await list('?down=true')).toEqual([]);
  });
});

describe('demo actions: start, stop and restart buttons', () => {
  it('runs the command an operator set for the demo on its node, as an audited command; 409 while none is set', async () => {
    const { agent, nodeId } = await onlineAgent('pi');
    agent.send({ type: 'demo.state', data: { full: true, demos: [run(1, true)] } });
    const [demo] = await waitFor(async () => ((await list()).length === 1 ? list() : null), 5000, 'the demo');
    expect(demo!.actions).toEqual({ start: null, stop: null, restart: null });

    const unset = await server.api('POST', `/api/v1/demos/${demo!.id}/actions/restart`, {});
    expect(unset.statusCode).toBe(409);
    expect(unset.json().error.message).toMatch(/no restart command is set for kiosk/);

    const patched = await server.api('PATCH', `/api/v1/demos/${demo!.id}`, { actions: { restart: 'systemctl restart kiosk', stop: 'pkill -f "kiosk; x"' } });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().demo.actions).toEqual({ start: null, stop: 'pkill -f "kiosk; x"', restart: 'systemctl restart kiosk' });
    // Only the actions named change; null clears one.
    const cleared = await server.api('PATCH', `/api/v1/demos/${demo!.id}`, { actions: { stop: null } });
    expect(cleared.json().demo.actions).toEqual({ start: null, stop: null, restart: 'systemctl restart kiosk' });

    const ran = await server.api('POST', `/api/v1/demos/${demo!.id}/actions/restart`, {});
    expect(ran.statusCode).toBe(202);
    expect(ran.json().command).toMatchObject({ node_id: nodeId, command: 'systemctl restart kiosk', user: 'admin' });
    const request = await agent.next((m: { type: string }) => m.type === 'exec.request');
    expect(request.data).toMatchObject({ command: 'systemctl restart kiosk' });
    const audit = (await server.api('GET', '/api/v1/audit?action=demo.action')).json().entries;
    expect(audit[0]).toMatchObject({ action: 'demo.action', target: demo!.id, outcome: 'ok' });

    // Settings survive a restart of the server's view (read back from the database).
    expect((await server.api('GET', `/api/v1/demos/${demo!.id}`)).json().demo.actions.restart).toBe('systemctl restart kiosk');
    agent.close();
  });

  it('refuses an unknown action and unknown fields with 400, and a viewer with 403; an empty command clears it', async () => {
    const { agent } = await onlineAgent('pi');
    agent.send({ type: 'demo.state', data: { full: true, demos: [run(1, true)] } });
    const [demo] = await waitFor(async () => ((await list()).length === 1 ? list() : null), 5000, 'the demo');
    expect((await server.api('POST', `/api/v1/demos/${demo!.id}/actions/reboot`, {})).statusCode).toBe(400);
    expect((await server.api('PATCH', `/api/v1/demos/${demo!.id}`, { actions: { restart: '' } })).json().demo.actions.restart).toBeNull();
    expect((await server.api('PATCH', `/api/v1/demos/${demo!.id}`, { actions: { reboot: 'x' } })).statusCode).toBe(400);
    await server.app.users.create('watcher', await hashPassword('watcher-password'), 'viewer');
    const login = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'watcher', password: 'watcher-password' } });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const refused = await server.app.inject({ method: 'POST', url: `/api/v1/demos/${demo!.id}/actions/start`, headers: { cookie }, payload: {} });
    expect(refused.statusCode).toBe(403);
    agent.close();
  });
});
