// Alerts end to end (issue 14, "Done when"): the real server, the real agent and real Python demos
// (libs/python); a webhook receiver on loopback. Short windows come from env and rule edits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRule, AlertWebhook, LabDemo } from '@dvic/protocol';
import { startReceiver, type Receiver } from '../server/test/support/http-receiver.mjs';
import { call, enroll, signIn, type Api } from './support/api.js';
import { pythonDemo } from './support/demos.js';
import { startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type Proc, type ServerProcess } from './support/processes.js';

const NODE = 'pi-hall-3';

describe('alerts with the real agent', () => {
  let server: ServerProcess;
  let api: Api;
  let receiver: Receiver;
  let agent: Proc;
  let env: Record<string, string>;
  let nodeId: string;

  const messages = () => receiver.received.map((r) => r.json as AlertWebhook);
  const about = (demo: string | null) => (m: AlertWebhook) => m.alerts.some((a) => a.node?.name === NODE && a.demo === demo);
  const demo = async (name: string): Promise<LabDemo | undefined> =>
    (await call(api.GET('/api/v1/demos', { params: { query: { node: nodeId } } }))).demos.find((d) => d.name === name);
  async function editRule(kind: AlertRule['kind'], body: { for_s?: number }): Promise<void> {
    const rule = (await call(api.GET('/api/v1/alert-rules'))).rules.find((r) => r.kind === kind && r.builtin)!;
    await call(api.PATCH('/api/v1/alert-rules/{id}', { params: { path: { id: rule.id } }, body }));
  }

  /** Starts a run of the demo (a few lines, then it waits) and waits until the server sees it running. */
  async function startRun(name: string): Promise<Proc> {
    const runs = (await demo(name))?.runs.length ?? 0;
    const proc = pythonDemo(env, name, 5, { holdS: 120, prefix: `${name} frame` });
    await waitFor(async () => {
      const d = await demo(name);
      return d && d.runs.length === runs + 1 && d.runs[0]!.alive && d.line_count >= 5 * (runs + 1);
    }, 20_000, `run ${runs + 1} of ${name} seen running`);
    return proc;
  }

  beforeAll(async () => {
    server = await startServer({ env: { DVIC_ALERT_GROUP_WAIT_MS: '300', DVIC_ALERT_FLAP_CHANGES: '3', DVIC_ALERT_FLAP_STABLE_S: '4', DVIC_DEMO_RESTART_WINDOW_S: '0' } });
    api = await signIn(server.baseUrl);
    receiver = await startReceiver();
    await call(api.POST('/api/v1/channels', { body: { type: 'webhook', name: 'lab chat', url: `${receiver.url}/dvic` } }));
    const created = await enroll(api, NODE);
    nodeId = created.node.id;
    const logDir = tempDir('dvic-alerts-logs-');
    agent = startAgent(writeAgentConfig(tempDir(), created.config, { metrics_interval_s: 1, log_dir: logDir }));
    env = { DVIC_LOG_DIR: logDir };
    await waitFor(async () => (await call(api.GET('/api/v1/nodes/{id}', { params: { path: { id: nodeId } } }))).node.status === 'online', 20_000, 'agent online');
  });
  afterAll(async () => {
    await stopAll();
    await receiver?.close();
  });

  it('a demo killed: a webhook within 5 s with its node, demo and last log lines; restarted: its recovery', async () => {
    const run = await startRun('kiosk');
    const from = receiver.received.length;
    const killedAt = Date.now();
    run.signal('SIGKILL');
    const fired = await receiver.waitFor((r) => about('kiosk')(r.json as AlertWebhook) && (r.json as AlertWebhook).event === 'firing', 15_000, from);
    expect(fired.at - killedAt).toBeLessThan(5000);
    const body = fired.json as AlertWebhook;
    expect(body.title).toBe(`kiosk crashed on ${NODE}`);
    expect(body.alerts[0]).toMatchObject({ state: 'firing', demo: 'kiosk', node: { id: nodeId, name: NODE }, rule: { kind: 'demo_crashed' } });
    expect(body.alerts[0]!.last_lines.slice(-2)).toEqual(['WARN kiosk frame 3', 'ERROR kiosk frame 4']);

    await startRun('kiosk');
    const resolved = await receiver.waitFor((r) => about('kiosk')(r.json as AlertWebhook) && (r.json as AlertWebhook).event === 'resolved', 15_000, from);
    expect((resolved.json as AlertWebhook).title).toMatch(new RegExp(`^Resolved: kiosk crashed on ${NODE} \\(lasted \\d+s\\)$`));
  });

  it('a flapping demo (killed and started 10 times in a minute): one flapping message', async () => {
    const from = receiver.received.length;
    const began = Date.now();
    for (let i = 0; i < 10; i++) {
      const run = await startRun('blinky');
      run.signal('SIGKILL');
      await waitFor(async () => (await demo('blinky'))?.state === 'crashed', 15_000, `run ${i + 1} of blinky crashed`);
    }
    expect(Date.now() - began).toBeLessThan(60_000);
    await startRun('blinky');
    const flapping = await receiver.waitFor((r) => about('blinky')(r.json as AlertWebhook) && (r.json as AlertWebhook).event === 'flapping', 15_000, from);
    // Stable again (4 s without a change): the recovery closes the episode.
    await receiver.waitFor((r) => about('blinky')(r.json as AlertWebhook) && (r.json as AlertWebhook).event === 'resolved', 20_000, receiver.received.indexOf(flapping) + 1);
    const told = messages().slice(from).filter(about('blinky')).map((m) => m.event);
    expect(told.filter((e) => e === 'flapping')).toHaveLength(1);
    // Before the flapping message: the first crash and its recovery at most; after it: only the recovery.
    expect(told.slice(told.indexOf('flapping') + 1)).toEqual(['resolved']);
    expect(told.indexOf('flapping')).toBeLessThanOrEqual(3);
  });

  it('the node agent killed: one node-offline message and no per-demo messages', async () => {
    await editRule('node_offline', { for_s: 2 });
    const demos = [await startRun('cam-a'), await startRun('cam-b')];
    const from = receiver.received.length;
    agent.signal('SIGKILL');
    for (const d of demos) d.signal('SIGKILL');
    const offline = await receiver.waitFor((r) => about(null)(r.json as AlertWebhook), 20_000, from);
    expect((offline.json as AlertWebhook)).toMatchObject({ event: 'firing', title: `${NODE} is offline`, alerts: [{ rule: { kind: 'node_offline' }, node: { name: NODE } }] });
    // Quiet afterwards: nothing about its demos.
    await new Promise((r) => setTimeout(r, 3000));
    const told = messages().slice(from).flatMap((m) => m.alerts.map((a) => `${m.event} ${a.summary}`));
    expect(told).toEqual([`firing ${NODE} is offline`]);
  });
});
