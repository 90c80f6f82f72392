// The alert engine in a real server, fed by simulated agents over real WebSockets, notifying a
// real HTTP receiver on loopback. Windows are short (env) so nothing waits for real minutes.
import crypto from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Alert, AlertDelivery, AlertRule, AlertWebhook, Channel } from '@dvic/protocol';
import { SimulatedDemo } from '../../../cli/test/support/demo-logs.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../support/http-receiver.mjs';
import { AlertChannelsRepository } from '../../src/repositories/alert-channels-repository.js';
import { AlertsRepository } from '../../src/repositories/alerts-repository.js';
import { LiveRecorder } from '../support/live-recorder.js';
import { connectAgent, type SimulatedAgent } from '../support/simulated-agent.mjs';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

let server: TestServer;
let receiver: Receiver;
let channel: Channel;
const SECRET = 'test-hmac-secret';

beforeAll(async () => {
  server = await startTestServer({
    DVIC_ALERT_GROUP_WAIT_MS: '150', DVIC_ALERT_GROUP_WINDOW_S: '2', DVIC_ALERT_FLAP_CHANGES: '4', DVIC_ALERT_FLAP_STABLE_S: '2',
    DVIC_ALERT_RETRY_BASE_MS: '50', DVIC_ALERT_DELIVERY_ATTEMPTS: '3', DVIC_DEMO_RESTART_WINDOW_S: '0',
  });
  receiver = await startReceiver();
  const res = await server.api('POST', '/api/v1/channels', { type: 'webhook', name: 'lab', url: `${receiver.url}/hook`, secret: SECRET });
  expect(res.statusCode).toBe(201);
  channel = res.json<{ channel: Channel }>().channel;
}, 60_000);
afterAll(async () => {
  await server?.close();
  await receiver?.close();
});

const rules = async () => (await server.api('GET', '/api/v1/alert-rules')).json<{ rules: AlertRule[] }>().rules;
const ruleOf = async (kind: AlertRule['kind']) => (await rules()).find((r) => r.kind === kind && r.builtin)!;
async function patchRule(kind: AlertRule['kind'], change: object): Promise<AlertRule> {
  const res = await server.api('PATCH', `/api/v1/alert-rules/${(await ruleOf(kind)).id}`, change);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ rule: AlertRule }>().rule;
}
const messages = (node: string) => receiver.received.filter((r) => (r.json as AlertWebhook).alerts.some((a) => a.node?.name === node));
const webhook = (r: ReceivedRequest) => r.json as AlertWebhook;
const waitMessage = (node: string, predicate: (m: AlertWebhook) => boolean) =>
  receiver.waitFor((r) => (r.json as AlertWebhook).alerts.some((a) => a.node?.name === node) && predicate(r.json as AlertWebhook), 10_000);

async function node(name: string): Promise<{ id: string; agent: SimulatedAgent }> {
  const { config } = await server.enroll(name);
  const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['hardware'] });
  return { id: config.node_id, agent };
}

const run = (demo: string, i: number, alive: boolean) => ({ token: `tok-${demo}-${i}`.padEnd(20, '0'), demo, pid: 1000 + i, alive });
const demoState = (agent: SimulatedAgent, demos: ReturnType<typeof run>[]) => agent.send({ type: 'demo.state', data: { full: false, demos } });

describe('alert engine', () => {
  it('starts a fresh install with the default rules, notifying every channel', async () => {
    const all = await rules();
    expect(all.filter((r) => r.builtin).map((r) => [r.kind, r.threshold, r.for_s])).toEqual([
      ['node_offline', null, 60], ['demo_crashed', null, 0], ['demo_down', null, 30], ['device_down', null, 0], ['disk_used', 90, 300], ['temperature', 85, 60],
    ]);
    expect(all.every((r) => r.channels === null && r.repeat_s === 4 * 3600)).toBe(true);
  });

  it('tells a crashed demo with its node, then its recovery with how long it lasted; signed with HMAC', async () => {
    const { agent } = await node('pi-crash');
    demoState(agent, [run('kiosk', 1, true)]);
    await waitFor(async () => (await server.api('GET', '/api/v1/demos')).json<{ demos: { name: string }[] }>().demos.some((d) => d.name === 'kiosk'));
    demoState(agent, [run('kiosk', 1, false)]);
    const fired = await waitMessage('pi-crash', (m) => m.event === 'firing');
    expect(webhook(fired)).toMatchObject({ version: 1, event: 'firing', title: 'kiosk crashed on pi-crash' });
    expect(webhook(fired).alerts[0]).toMatchObject({ state: 'firing', demo: 'kiosk', node: { name: 'pi-crash' }, rule: { kind: 'demo_crashed' }, severity: 'critical' });
    const ts = String(fired.headers['x-dvic-timestamp']);
    const expected = `sha256=${crypto.createHmac('sha256', SECRET).update(`${ts}.${fired.body}`).digest('hex')}`;
    expect(fired.headers['x-dvic-signature']).toBe(expected);

    demoState(agent, [run('kiosk', 2, true)]);
    const resolved = await waitMessage('pi-crash', (m) => m.event === 'resolved');
    expect(webhook(resolved).title).toMatch(/^Resolved: kiosk crashed on pi-crash \(lasted \d+s\)$/);
    expect(webhook(resolved).alerts[0]).toMatchObject({ state: 'resolved', demo: 'kiosk' });
    const history = (await server.api('GET', '/api/v1/alerts?state=resolved')).json<{ alerts: Alert[] }>().alerts;
    expect(history.find((a) => a.subject.node_name === 'pi-crash')).toMatchObject({ state: 'resolved', summary: 'kiosk crashed on pi-crash' });
    agent.close();
  });

  it('an expected demo that crashed is told as crashed, not also as down', async () => {
    await patchRule('demo_down', { for_s: 0 });
    const { id, agent } = await node('pi-expected');
    demoState(agent, [run('organ', 1, true)]);
    const demo = await waitFor(async () => (await server.api('GET', `/api/v1/demos?node=${id}`)).json<{ demos: { id: string }[] }>().demos[0]);
    expect((await server.api('PATCH', `/api/v1/demos/${demo.id}`, { expected: true })).statusCode).toBe(200);
    demoState(agent, [run('organ', 1, false)]);
    await waitMessage('pi-expected', (m) => m.event === 'firing');
    await new Promise((r) => setTimeout(r, 800));
    expect(messages('pi-expected').flatMap((m) => webhook(m).alerts.map((a) => a.rule.kind))).toEqual(['demo_crashed']);
    await patchRule('demo_down', { for_s: 30 });
    agent.close();
  });

  it('groups demos dying together into one message per channel', async () => {
    const { agent } = await node('pi-hall-3');
    demoState(agent, [run('a', 1, true), run('b', 1, true), run('c', 1, true)]);
    await new Promise((r) => setTimeout(r, 100));
    for (const d of ['a', 'b', 'c']) demoState(agent, [run(d, 1, false)]);
    const group = await waitMessage('pi-hall-3', (m) => m.event === 'firing');
    expect(webhook(group).title).toBe('3 demos crashed on pi-hall-3');
    expect(webhook(group).alerts.map((a) => a.demo).sort()).toEqual(['a', 'b', 'c']);
    await new Promise((r) => setTimeout(r, 500));
    expect(messages('pi-hall-3')).toHaveLength(1);
    agent.close();
  });

  it('a node going offline holds back its demos\' alerts: one node-offline message', async () => {
    await patchRule('node_offline', { for_s: 1 });
    await patchRule('demo_crashed', { for_s: 1 });
    const { id, agent } = await node('pi-gone');
    demoState(agent, [run('cam', 1, true)]);
    await waitFor(async () => (await server.api('GET', `/api/v1/demos?node=${id}`)).json<{ demos: unknown[] }>().demos.length === 1);
    demoState(agent, [run('cam', 1, false)]);
    agent.close();
    await waitMessage('pi-gone', (m) => m.event === 'firing');
    await new Promise((r) => setTimeout(r, 1500));
    // (Nodes of the tests before went offline too: they may share the message.)
    const told = messages('pi-gone').flatMap((m) => webhook(m).alerts.filter((x) => x.node?.name === 'pi-gone').map((x) => `${webhook(m).event} ${x.summary}`));
    expect(told).toEqual(['firing pi-gone is offline']);
    await patchRule('node_offline', { for_s: 60 });
    await patchRule('demo_crashed', { for_s: 0 });
  });

  it('blips shorter than the rule\'s "for" are not flapping: a node that then stays away is told offline once', async () => {
    await patchRule('node_offline', { for_s: 2 });
    const { config } = await server.enroll('pi-blip');
    const connect = () => connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['hardware'] });
    const online = async (want: boolean) => waitFor(async () => ((await server.api('GET', `/api/v1/nodes/${config.node_id}`)).json<{ node: { status: string } }>().node.status === 'online') === want);
    for (let i = 0; i < 6; i++) {
      const agent = await connect();
      await online(true);
      agent.close();
      await online(false);
    }
    await waitMessage('pi-blip', (m) => m.event === 'firing');
    await new Promise((r) => setTimeout(r, 500));
    const told = messages('pi-blip').flatMap((m) => webhook(m).alerts.filter((x) => x.node?.name === 'pi-blip').map((x) => `${webhook(m).event} ${x.summary}`));
    expect(told).toEqual(['firing pi-blip is offline']);
    await patchRule('node_offline', { for_s: 60 });
  });

  it('a flapping demo: one flapping message, then quiet until stable, then its recovery', async () => {
    const { agent } = await node('pi-flap');
    for (let i = 0; i < 10; i++) {
      demoState(agent, [run('blinky', i, true)]);
      await new Promise((r) => setTimeout(r, 20));
      demoState(agent, [run('blinky', i, false)]);
      await new Promise((r) => setTimeout(r, 20));
    }
    demoState(agent, [run('blinky', 99, true)]);
    await waitMessage('pi-flap', (m) => m.event === 'resolved');
    const kinds = messages('pi-flap').map((m) => webhook(m).event);
    expect(kinds.filter((k) => k === 'flapping')).toHaveLength(1);
    expect(kinds.slice(kinds.indexOf('flapping') + 1)).toEqual(['resolved']);
    agent.close();
  });

  it('ERROR lines over a rate, and a demo gone silent, each fire; alert.updated reaches live clients', async () => {
    const { id, agent } = await node('pi-noisy');
    for (const body of [
      { name: 'noisy', kind: 'log_errors', threshold: 3, scope: { node: id } },
      { name: 'silent', kind: 'demo_silent', threshold: 1, scope: { node: id } },
    ]) expect((await server.api('POST', '/api/v1/alert-rules', body)).statusCode).toBe(201);
    const live = new WebSocket(server.liveUrl, { headers: { cookie: server.cookie } });
    const recorder = new LiveRecorder(live);
    await waitFor(() => recorder.first('snapshot'), 3000, 'snapshot');
    const demo = new SimulatedDemo(agent, 'chatty');
    demo.state(true);
    await demo.write([['INFO', 'up'], ['ERROR', 'e1'], ['ERROR', 'e2'], ['FATAL', 'e3'], ['ERROR', 'e4']]);
    const noisy = await waitMessage('pi-noisy', (m) => m.alerts.some((a) => a.rule.kind === 'log_errors'));
    expect(webhook(noisy).alerts.find((a) => a.rule.kind === 'log_errors')).toMatchObject({
      value: 4, summary: 'chatty on pi-noisy logged 4 errors in the last minute', last_lines: ['INFO up', 'ERROR e1', 'ERROR e2', 'FATAL e3', 'ERROR e4'],
    });
    const silent = await waitMessage('pi-noisy', (m) => m.event === 'firing' && m.alerts.some((a) => a.rule.kind === 'demo_silent'));
    expect(webhook(silent).alerts.find((a) => a.rule.kind === 'demo_silent')!.summary).toBe('chatty on pi-noisy wrote nothing for 1 s');
    await demo.write([['INFO', 'back']]);
    await waitMessage('pi-noisy', (m) => m.event === 'resolved' && m.alerts.some((a) => a.rule.kind === 'demo_silent'));
    await waitFor(() => recorder.all('alert.updated').some((m) => m.data.alert.kind === 'demo_silent' && m.data.alert.state === 'resolved'), 3000, 'live alert.updated');
    live.close();
    for (const r of (await rules()).filter((x) => x.scope.node === id)) await server.api('DELETE', `/api/v1/alert-rules/${r.id}`);
    agent.close();
  });

  it('thresholds on each hardware state: disk and temperature fire and resolve', async () => {
    await patchRule('disk_used', { for_s: 0 });
    await patchRule('temperature', { for_s: 0 });
    const { agent } = await node('jetson-hot');
    agent.sendHardware({
      filesystems: [{ mount: '/data', fstype: 'ext4', size_bytes: 100, used_bytes: 95, avail_bytes: 5 }],
      temperatures: [{ sensor: 'thermal_zone1', source: 'thermal', chip: 'gpu-thermal', celsius: 91.2 }],
    });
    const fired = await waitMessage('jetson-hot', (m) => m.event === 'firing');
    expect(webhook(fired).alerts.map((a) => a.summary).sort()).toEqual(['/data on jetson-hot is 95 % full', 'jetson-hot is at 91.2 °C (gpu-thermal)']);
    agent.sendHardware({ filesystems: [{ mount: '/data', fstype: 'ext4', size_bytes: 100, used_bytes: 50, avail_bytes: 50 }] });
    const resolved = await waitMessage('jetson-hot', (m) => m.event === 'resolved');
    expect(webhook(resolved).alerts.map((a) => a.rule.kind).sort()).toEqual(['disk_used', 'temperature']);
    agent.close();
  });

  it('a mute keeps a node quiet until it ends; the alert is still listed, marked muted', async () => {
    const { id, agent } = await node('pi-muted');
    const mute = await server.api('POST', '/api/v1/alert-mutes', { node: 'pi-muted', duration_s: 600, reason: 'moving it' });
    expect(mute.statusCode, mute.body).toBe(201);
    demoState(agent, [run('quiet', 1, true)]);
    await new Promise((r) => setTimeout(r, 100));
    demoState(agent, [run('quiet', 1, false)]);
    const alert = await waitFor(async () => (await server.api('GET', '/api/v1/alerts?state=firing')).json<{ alerts: Alert[] }>().alerts.find((a) => a.subject.node_id === id));
    expect(alert).toMatchObject({ muted: true, notified_at: null });
    await new Promise((r) => setTimeout(r, 600));
    expect(messages('pi-muted')).toEqual([]);
    // Lifted while it still fires: told now.
    await server.api('DELETE', `/api/v1/alert-mutes/${mute.json<{ mute: { id: string } }>().mute.id}`);
    expect(webhook(await waitMessage('pi-muted', (m) => m.event === 'firing')).title).toBe('quiet crashed on pi-muted');
    agent.close();
  });

  it('a maintenance window: quiet while it lasts, told when it ends if still firing', async () => {
    const { agent } = await node('pi-window');
    const created = await server.api('POST', '/api/v1/alert-mutes', { node: 'pi-window', starts_at: Date.now(), duration_s: 2 });
    expect(created.statusCode, created.body).toBe(201);
    demoState(agent, [run('show', 1, true)]);
    await new Promise((r) => setTimeout(r, 100));
    demoState(agent, [run('show', 1, false)]);
    const crashedAt = Date.now();
    const told = await waitMessage('pi-window', (m) => m.event === 'firing');
    expect(told.at - crashedAt).toBeGreaterThan(1000);
    agent.close();
  });

  it('repeats while firing until acknowledged', async () => {
    const rule = await patchRule('demo_crashed', { repeat_s: 1 });
    const { agent } = await node('pi-repeat');
    demoState(agent, [run('loop', 1, true)]);
    await new Promise((r) => setTimeout(r, 100));
    demoState(agent, [run('loop', 1, false)]);
    const fired = await waitMessage('pi-repeat', (m) => m.event === 'firing');
    await waitMessage('pi-repeat', (m) => m.event === 'repeat');
    const id = webhook(fired).alerts[0]!.id;
    const acked = await server.api('POST', `/api/v1/alerts/${id}/ack`);
    expect(acked.json<{ alert: Alert }>().alert).toMatchObject({ acked_by: 'admin' });
    const count = messages('pi-repeat').length;
    await new Promise((r) => setTimeout(r, 2500));
    expect(messages('pi-repeat')).toHaveLength(count);
    await server.api('PATCH', `/api/v1/alert-rules/${rule.id}`, { repeat_s: 4 * 3600 });
    agent.close();
  });

  it('keeps an alert unacknowledged when the acknowledging request rolls back', async () => {
    const { agent } = await node('pi-ack-rollback');
    demoState(agent, [run('flop', 1, true)]);
    await new Promise((r) => setTimeout(r, 100));
    demoState(agent, [run('flop', 1, false)]);
    const id = webhook(await waitMessage('pi-ack-rollback', (m) => m.event === 'firing')).alerts[0]!.id;
    const { sql, alerts } = server.app;
    const updates: Alert[] = [];
    const onUpdated = (alert: Alert) => updates.push(alert);
    alerts.engine.on('updated', onUpdated);
    await expect(sql.transaction(async () => {
      await alerts.engine.ack(id, 'someone');
      throw new Error('the audit entry could not be written');
    })).rejects.toThrow('the audit entry could not be written');
    alerts.engine.off('updated', onUpdated);
    expect(updates.filter((a) => a.id === id && a.acked_by)).toEqual([]);
    expect(await alerts.engine.get(id)).toMatchObject({ state: 'firing', acked_at: null, acked_by: null });
    const acked = await server.api('POST', `/api/v1/alerts/${id}/ack`);
    expect(acked.json<{ alert: Alert }>().alert).toMatchObject({ acked_by: 'admin' });
    expect(await alerts.engine.get(id)).toMatchObject({ acked_by: 'admin' });
    agent.close();
  });

  it('retries a refused delivery with backoff and logs each outcome', async () => {
    let refusals = 2;
    const flaky = await startReceiver({ status: () => (refusals-- > 0 ? 503 : 200) });
    const down = await startReceiver({ status: () => 500 });
    try {
      const a = (await server.api('POST', '/api/v1/channels', { type: 'webhook', name: 'flaky', url: flaky.url })).json<{ channel: Channel }>().channel;
      const b = (await server.api('POST', '/api/v1/channels', { type: 'webhook', name: 'down', url: down.url })).json<{ channel: Channel }>().channel;
      for (const c of [a, b]) expect((await server.api('POST', `/api/v1/channels/${c.id}/test`)).statusCode).toBe(202);
      const last = async (id: string) => (await server.api('GET', '/api/v1/channels')).json<{ channels: Channel[] }>().channels.find((c) => c.id === id)!.last_delivery;
      await waitFor(async () => (await last(a.id))?.status === 'sent');
      expect(await last(a.id)).toMatchObject({ status: 'sent', status_code: 200, attempts: 3, kind: 'test' });
      await waitFor(async () => (await last(b.id))?.status === 'failed');
      expect(await last(b.id)).toMatchObject({ status: 'failed', status_code: 500, attempts: 3, error: expect.stringContaining('HTTP 500') });
      const log = (await server.api('GET', `/api/v1/channels/${b.id}/deliveries`)).json<{ deliveries: { status: string }[] }>().deliveries;
      expect(log[0]).toMatchObject({ status: 'failed' });
      for (const c of [a, b]) await server.api('DELETE', `/api/v1/channels/${c.id}`);
    } finally {
      await flaky.close();
      await down.close();
    }
  });

  it('each retry goes to the channel as it is then: a changed url and secret apply, a deleted channel stops', async () => {
    // The first attempt is held open until the test has changed the channel, then refused (503).
    const release: (() => void)[] = [];
    const holdThenRefuse = http.createServer((req, res) => {
      req.resume();
      release.push(() => res.writeHead(503).end('busy'));
    });
    await new Promise<void>((resolve) => holdThenRefuse.listen(0, '127.0.0.1', resolve));
    const oldUrl = `http://127.0.0.1:${(holdThenRefuse.address() as { port: number }).port}`;
    const moved = await startReceiver();
    const last = async (id: string) => (await server.api('GET', '/api/v1/channels')).json<{ channels: Channel[] }>().channels.find((c) => c.id === id)?.last_delivery;
    try {
      const changed = (await server.api('POST', '/api/v1/channels', { type: 'webhook', name: 'moving', url: `${oldUrl}/a`, secret: 'old-key' })).json<{ channel: Channel }>().channel;
      expect((await server.api('POST', `/api/v1/channels/${changed.id}/test`)).statusCode).toBe(202);
      await waitFor(() => release.length === 1);
      expect((await server.api('PATCH', `/api/v1/channels/${changed.id}`, { url: `${moved.url}/b`, secret: 'new-key' })).statusCode).toBe(200);
      release[0]!();
      const got = await moved.waitFor((r) => r.path === '/b');
      const timestamp = String(got.headers['x-dvic-timestamp']);
      expect(got.headers['x-dvic-signature']).toBe(`sha256=${crypto.createHmac('sha256', 'new-key').update(`${timestamp}.${got.body}`).digest('hex')}`);
      await waitFor(async () => (await last(changed.id))?.status === 'sent');
      expect(await last(changed.id)).toMatchObject({ status: 'sent', status_code: 200, attempts: 2 });

      const deleted = (await server.api('POST', '/api/v1/channels', { type: 'webhook', name: 'deleted', url: `${oldUrl}/c` })).json<{ channel: Channel }>().channel;
      expect((await server.api('POST', `/api/v1/channels/${deleted.id}/test`)).statusCode).toBe(202);
      await waitFor(() => release.length === 2);
      expect((await server.api('DELETE', `/api/v1/channels/${deleted.id}`)).json<{ channel: Channel }>().channel.last_delivery).toBeNull();
      release[1]!();
      // Retries would come 50 then 100 ms later: wait well past them; none arrives, nothing is logged again.
      await new Promise((r) => setTimeout(r, 1000));
      expect(release).toHaveLength(2);
      expect(server.app.alerts.deliveries.lastOf(deleted.id)).toBeNull();
      expect(await server.app.alerts.deliveries.list(deleted.id, 10)).toEqual([]);
      await server.api('DELETE', `/api/v1/channels/${changed.id}`);
    } finally {
      holdThenRefuse.closeAllConnections();
      await new Promise<void>((resolve) => holdThenRefuse.close(() => resolve()));
      await moved.close();
    }
  });

  it('refuses bad rules, channels and mutes with a clear 400', async () => {
    const cases: [string, string, object, RegExp][] = [
      ['POST', '/api/v1/alert-rules', { name: 'disk', kind: 'disk_used' }, /needs a threshold/],
      ['POST', '/api/v1/alert-rules', { name: 'x', kind: 'node_offline', channels: [crypto.randomUUID()] }, /unknown channel/],
      ['POST', '/api/v1/alert-rules', { name: 'x', kind: 'nope' }, /kind/],
      ['POST', '/api/v1/channels', { type: 'webhook', name: 'x', url: 'file:///etc/passwd' }, /http or https/],
      ['POST', '/api/v1/channels', { type: 'webhook', name: 'x', url: 'not a url' }, /needs a url/],
      ['POST', '/api/v1/channels', { type: 'telegram', name: 'x', secret: 'token; rm -rf /', chat_id: '1' }, /bot token/],
      ['POST', '/api/v1/channels', { type: 'email', name: 'x' }, /SMTP settings/],
      ['POST', '/api/v1/alert-mutes', { node: 'pi-crash' }, /ends_at or duration_s/],
      ['POST', '/api/v1/alert-mutes', { duration_s: 60 }, /names a node/],
    ];
    for (const [method, url, body, message] of cases) {
      const res = await server.api(method as 'POST', url, body);
      expect(res.statusCode, url).toBe(400);
      expect(res.json<{ error: { message: string } }>().error.message).toMatch(message);
    }
    const broken = await server.app.inject({ method: 'POST', url: '/api/v1/channels', headers: { cookie: server.cookie, 'content-type': 'application/json' }, payload: '{"type":' });
    expect(broken.statusCode).toBe(400);
    expect((await server.api('GET', '/api/v1/channels')).json<{ channels: Channel[] }>().channels.map((c) => c.id)).toContain(channel.id);
  });

  it('never answers a channel secret; a viewer sees only the origin of a channel URL, and may not add one', async () => {
    const all = (await server.api('GET', '/api/v1/channels')).body;
    expect(all).not.toContain(SECRET);
    expect(JSON.parse(all).channels.find((c: Channel) => c.id === channel.id)).toMatchObject({ has_secret: true, url: `${receiver.url}/hook` });
    const { token } = (await server.api('POST', '/api/v1/tokens', { name: 'wall', role: 'viewer' })).json<{ token: string }>();
    const asViewer = (method: 'GET' | 'POST', url: string, payload?: object) =>
      server.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
    const seen = (await asViewer('GET', '/api/v1/channels')).json<{ channels: Channel[] }>().channels.find((c) => c.id === channel.id);
    expect(seen!.url).toBe(`${receiver.url}/…`);
    expect((await asViewer('POST', '/api/v1/channels', { type: 'webhook', name: 'x', url: receiver.url })).statusCode).toBe(403);
    expect((await asViewer('POST', `/api/v1/channels/${channel.id}/test`, {})).statusCode).toBe(403);
  });

  it('an engine started again (a replica elected again) reads its alerts from the database, not what it held before', async () => {
    await patchRule('node_offline', { for_s: 0 });
    const { agent } = await node('pi-again');
    agent.close();
    const fired = await waitMessage('pi-again', (m) => m.event === 'firing');
    await patchRule('node_offline', { for_s: 60 });
    const id = webhook(fired).alerts[0]!.id;
    const { engine } = server.app.alerts;
    engine.stop();
    await engine.settled();
    // Meanwhile another leader resolved it.
    const alerts = new AlertsRepository(server.app.sql);
    const stored = (await alerts.get(id))!;
    await alerts.save({ ...stored, state: 'resolved', resolved_at: Date.now() }, (await alerts.firing()).find((f) => f.alert.id === id)!.key);
    await engine.start();
    expect((await server.api('GET', `/api/v1/alerts/${id}`)).json<{ alert: Alert }>().alert.state).toBe('resolved');
  });

  it('a delivery left pending about alerts resolved since is not sent after a restart: given up, saying why', async () => {
    const resolved = (await server.api('GET', '/api/v1/alerts?state=resolved')).json<{ alerts: Alert[] }>().alerts[0]!;
    const now = Date.now();
    const stale: AlertDelivery = {
      id: crypto.randomUUID(), channel_id: channel.id, kind: 'firing', alert_ids: [resolved.id], title: resolved.summary, status: 'pending',
      status_code: null, error: null, attempts: 0, created_at: now, updated_at: now, next_attempt_at: now,
    };
    await new AlertChannelsRepository(server.app.sql).saveDelivery(stale); // a server stopped before it sent it
    const before = receiver.received.length;
    await server.restart();
    const logged = await waitFor(async () => (await server.api('GET', `/api/v1/channels/${channel.id}/deliveries?limit=200`)).json<{ deliveries: AlertDelivery[] }>()
      .deliveries.find((d) => d.id === stale.id && d.status !== 'pending'), 10_000, 'the stale delivery settled');
    expect(logged).toMatchObject({ status: 'failed', error: expect.stringMatching(/resolved before it could be/) });
    expect(receiver.received.slice(before).filter((r) => webhook(r).event === 'firing' && webhook(r).alerts.some((a) => a.id === resolved.id))).toEqual([]);
  });

  it('a pending delivery is attempted after a restart only if it is still pending as it was read (another process may have sent it meanwhile)', async () => {
    const now = Date.now();
    const waiting: AlertDelivery = {
      id: crypto.randomUUID(), channel_id: channel.id, kind: 'test', alert_ids: [], title: 'a test', status: 'pending',
      status_code: null, error: null, attempts: 1, created_at: now, updated_at: now, next_attempt_at: now + 2000,
    };
    const deliveries = () => new AlertChannelsRepository(server.app.sql);
    await deliveries().saveDelivery(waiting); // its retry due in 2 s
    const before = receiver.received.length;
    await server.restart();
    // The process that had it (a deposed leader, still alive) sends it and stores that, before its time comes here.
    await deliveries().saveDelivery({ ...waiting, status: 'sent', status_code: 200, attempts: 2, next_attempt_at: null, updated_at: Date.now() });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(receiver.received.slice(before).filter((r) => webhook(r).event === 'test')).toEqual([]);
    expect((await deliveries().delivery(waiting.id))?.status).toBe('sent');
  });

  it('keeps firing alerts and rules across a restart, without seeding the defaults again', async () => {
    const firing = (await server.api('GET', '/api/v1/alerts?state=firing')).json<{ alerts: Alert[] }>().alerts.map((a) => a.id).sort();
    const rule = (await rules()).find((r) => r.kind === 'temperature')!;
    await server.api('DELETE', `/api/v1/alert-rules/${rule.id}`);
    await server.restart();
    const after = (await server.api('GET', '/api/v1/alerts?state=firing')).json<{ alerts: Alert[] }>().alerts.map((a) => a.id);
    expect(after).toEqual(expect.arrayContaining(firing.filter((id) => id)));
    expect((await rules()).some((r) => r.kind === 'temperature')).toBe(false);
  });
});
