// Issue 17's Done-when: two replica processes of one lab on ONE PostgreSQL database and the real
// NATS (a prefix of the test's own), sharing the update key and the shipped agent. The real agent
// (under a supervisor that restarts it like systemd, for its update) signs in on A; from B the
// real `dvic` CLI runs a command, follows a demo's log, updates the agent and deploys an artifact,
// and real Chromium opens a terminal on the node, follows its log and shows a firing alert told to
// a real webhook receiver. Then A, the leader, is killed with SIGKILL: the agent is on B within
// its backoff cap, a demo writing numbered lines throughout loses none and doubles none, and each
// alert (before, across and after the failover) reaches the receiver exactly once.
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertWebhook } from '@dvic/protocol';
import { natsAvailable, postgresAvailable } from '../server/test/cluster/bus-fixtures.js';
import { startReceiver, type Receiver } from '../server/test/support/http-receiver.mjs';
import { connectAgent, type SimulatedAgent } from '../server/test/support/simulated-agent.mjs';
import { testDatabase } from '../server/test/support/postgres.js';
import { AGENT_SOURCE, agentVersion, AgentSupervisor, installAgent, stopSupervisors } from './support/agent-supervisor.js';
import { call, enroll, getNode, runOn, session, type Api } from './support/api.js';
import { chromiumMissing, launchChromium, screenshot, signedInPage } from './support/browser.js';
import { cliMissing, dvicOn, type Dvic } from './support/cli.js';
import { linesWritten, pythonDemo, steadyDemo } from './support/demos.js';
import { allRecords, demos } from './support/logs.js';
import { ADMIN_PASSWORD, repoDir, sleep, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess } from './support/processes.js';
import { lab, type Lab } from './support/replicas.js';

const LEASE_S = 3;
const NODE = 'pi-a';
/** What a replica logs when it takes the leader lease (the one place a replica's leadership shows). */
const ELECTED = 'elected: running the leader jobs';
/** The agent's reconnection backoff cap, read from the agent itself. */
const BACKOFF_CAP_S = Number(/^BACKOFF_CAP_S = ([\d.]+)$/m.exec(AGENT_SOURCE)?.[1]);
/** The bound the issue sets on the agent's move to B: its backoff cap, plus the lease, plus slack for a loaded machine. */
const MOVE_BOUND_MS = (BACKOFF_CAP_S + LEASE_S + 5) * 1000;
/** Update health timings shortened for the test, as in agent-update.test.ts. */
const UPDATE_HEALTH = { update_hello_timeout_s: 5, update_stable_s: 3 };

async function missingDependency(): Promise<string | null> {
  if (!(await natsAvailable())) return 'NATS JetStream on 127.0.0.1:4222';
  if (!(await postgresAvailable())) return 'PostgreSQL on 127.0.0.1:5432';
  const dashboard = fs.existsSync(path.join(repoDir, 'dashboard/dist/index.html')) ? null : 'the dashboard is not built (npm run build)';
  return chromiumMissing() ?? cliMissing() ?? dashboard;
}
const missing = await missingDependency();

/** Each alert the receiver was told, as "<event> <summary>" (test messages left out). */
const toldAlerts = (receiver: Receiver) => receiver.received.map((r) => r.json as AlertWebhook).filter((m) => m.event !== 'test')
  .flatMap((m) => m.alerts.map((a) => `${m.event} ${a.summary}`));

describe.skipIf(missing !== null && process.env.CI !== 'true')('two replicas on one PostgreSQL database: agent on A, dashboard and CLI on B', () => {
  let cluster: Lab;
  let database: Awaited<ReturnType<typeof testDatabase>>;
  let a: ServerProcess;
  let b: ServerProcess;
  let apiB: Api;
  let dvic: Dvic;
  let receiver: Receiver;
  let browser: Browser;
  let page: Page;
  let shipped: string;
  let nodeId: string;
  let agent: AgentSupervisor;
  let logDir: string;
  let deployRoot: string;
  let stranded: SimulatedAgent;
  const demoEnv = () => ({ DVIC_LOG_DIR: logDir });

  beforeAll(async () => {
    if (missing) throw new Error(`missing: ${missing}`);
    cluster = lab(LEASE_S);
    database = await testDatabase({ migrated: false });
    shipped = path.join(tempDir('dvic-scale-ship-'), 'dvic_agent.py');
    fs.writeFileSync(shipped, agentVersion('0.2.0'));
    const env = {
      DVIC_DATABASE_URL: database.url, DVIC_UPDATE_KEY_FILE: path.join(tempDir(), 'lab-update-key.pem'), DVIC_AGENT_FILE: shipped,
      DVIC_ALERT_GROUP_WAIT_MS: '300', DVIC_DEMO_RESTART_WINDOW_S: '0',
    };
    // A first, alone: it takes the leader lease, so killing it later kills the leader.
    a = await cluster.startReplica('replica-a', { env });
    await a.waitForOutput(ELECTED, 15_000);
    b = await cluster.startReplica('replica-b', { env });
    ({ api: apiB } = await session(b.baseUrl));
    dvic = await dvicOn(b.baseUrl);
    receiver = await startReceiver();
    await call(apiB.POST('/api/v1/channels', { body: { type: 'webhook', name: 'lab chat', url: `${receiver.url}/dvic` } }));

    const { node, config } = await enroll(apiB, NODE);
    nodeId = node.id;
    const dir = tempDir('dvic-scale-node-');
    const root = path.join(dir, 'opt');
    installAgent(root);
    logDir = path.join(dir, 'logs');
    deployRoot = tempDir('dvic-scale-deploy-');
    const configPath = writeAgentConfig(dir, { ...config, server_url: a.agentUrl }, {
      server_urls: [a.agentUrl, b.agentUrl], update_root: root, deploy_roots: [deployRoot], ...UPDATE_HEALTH,
    });
    agent = new AgentSupervisor(root, configPath);
    await waitFor(async () => (await getNode(apiB, nodeId)).status === 'online', 20_000, `${NODE} online, seen from B`);
    expect(agent.output).toContain(`connected to ${a.agentUrl}`);
    // B learns that A holds the node from the claims bucket, apart from the status event.
    await waitFor(() => runOn(apiB, nodeId, { command: 'true' }).catch(() => null), 15_000, `${NODE} reachable from B`);
  }, 90_000);

  afterAll(async () => {
    stranded?.close();
    await browser?.close();
    await stopSupervisors();
    await stopAll();
    await receiver?.close();
    await cluster?.close();
    await database?.drop();
  });

  it('dvic exec on B: the output and exit code of a command run by the agent on A', async () => {
    const res = await dvic.run(['exec', NODE, '--', 'sh', '-c', 'echo "on A: $((6 * 7))"; echo oops >&2; exit 3']);
    expect([res.code, res.stdout, res.stderr]).toEqual([3, 'on A: 42\n', 'oops\n']);
  });

  it('dvic logs -f on B: each line of a demo on A once, in order, as it is written', async () => {
    const stopFile = path.join(tempDir(), 'stop');
    const writer = steadyDemo(demoEnv(), 'ticker', { stopFile, rate: 50, max: 2000, prefix: 'tick' });
    await waitFor(async () => (await demos(apiB)).some((d) => d.demo === 'ticker' && d.line_count >= 10), 15_000, 'the first lines stored');
    const follow = dvic.start(['logs', NODE, '--demo', 'ticker', '-f', '-n', '1000']);
    const printed = () => [...follow.output.matchAll(/ tick (\d+)$/gm)].map((m) => Number(m[1]));
    const first = await waitFor(() => printed().length > 0 && printed().at(-1)! + 1, 15_000, 'the history');
    await waitFor(() => printed().at(-1)! >= first + 50, 15_000, 'lines written while following');
    fs.writeFileSync(stopFile, '');
    const count = await linesWritten(writer);
    await waitFor(() => printed().at(-1) === count - 1, 15_000, 'the last line');
    await follow.kill('SIGINT');
    expect(printed()).toEqual(Array.from({ length: count }, (_, i) => i));
  });

  it('dvic update on B: the agent on A updates itself to the shipped version and comes back', async () => {
    const res = await dvic.run(['update', NODE, '--no-canary'], { timeoutMs: 90_000 });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    await waitFor(async () => { const n = await getNode(apiB, nodeId); return n.status === 'online' && n.agent_version === '0.2.0'; }, 30_000, `${NODE} online on 0.2.0`);
    expect(agent.exitCodes).toContain(75); // restarted through the unit's restart code
  });

  it('dvic deploy on B: an artifact uploaded to B lands on the node of A', async () => {
    const file = path.join(tempDir(), 'site.txt');
    fs.writeFileSync(file, 'a demo, deployed from replica B\n');
    const upload = await dvic.run(['artifacts', 'upload', file, '--name', 'site', '--version', '1']);
    expect(upload.code, upload.stderr).toBe(0);
    const target = path.join(deployRoot, 'site.txt');
    const res = await dvic.run(['deploy', 'site@1', NODE, '--path', target], { timeoutMs: 60_000 });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/: done$/m);
    expect(fs.readFileSync(target, 'utf8')).toBe('a demo, deployed from replica B\n');
  });

  it("B's dashboard: a terminal on the node, its log lines live, and a crash told once, firing", async () => {
    browser = await launchChromium();
    page = await signedInPage(browser, b.baseUrl, ADMIN_PASSWORD);
    await page.getByRole('navigation', { name: 'Main' }).waitFor();

    await page.goto(`${b.baseUrl}/nodes/${nodeId}/terminal`);
    await expect.poll(() => page.getByTestId('terminal-status').textContent(), { timeout: 15_000 }).toMatch(/shell pid/);
    await expect.poll(() => page.locator('.xterm-rows').innerText(), { timeout: 15_000 }).toMatch(/[$#]\s*$/m);
    await page.locator('.xterm').click();
    await page.keyboard.type('echo "B sees $((6 * 7))"');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.xterm-rows').innerText(), { timeout: 10_000 }).toMatch(/^B sees 42$/m);
    await page.screenshot({ path: screenshot('scale-out-terminal') });

    await page.goto(`${b.baseUrl}/logs?demo=kiosk`);
    await page.getByLabel('Follow').waitFor();
    const kiosk = pythonDemo(demoEnv(), 'kiosk', 5, { holdS: 120, prefix: 'kiosk frame' });
    await expect.poll(() => page.locator('.log-line .message').allTextContents(), { timeout: 15_000 })
      .toEqual(['kiosk frame 0', 'kiosk frame 1', 'kiosk frame 2', 'kiosk frame 3', 'kiosk frame 4']);

    await waitFor(async () => (await demos(apiB)).some((d) => d.demo === 'kiosk' && d.alive), 15_000, 'kiosk seen running');
    kiosk.signal('SIGKILL');
    await receiver.waitFor((r) => (r.json as AlertWebhook).event === 'firing', 15_000);
    await page.goto(`${b.baseUrl}/alerts`);
    await page.getByRole('table', { name: 'Firing now' }).locator(`tr[data-alert="kiosk crashed on ${NODE}"]`).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: screenshot('scale-out-alerts'), fullPage: true });
    expect(toldAlerts(receiver)).toEqual([`firing kiosk crashed on ${NODE}`]);
  });

  it('A (the leader) killed: the agent is on B within its backoff cap, no line lost or doubled, each alert told once', async () => {
    // A second node on A whose agent does not come back: the new leader tells it offline, once.
    const { node, config } = await enroll(apiB, 'pi-stranded');
    stranded = await connectAgent({ url: a.agentUrl, nodeId: node.id, privateKeyPem: config.private_key, capabilities: ['exec'] });
    const offlineRule = (await call(apiB.GET('/api/v1/alert-rules'))).rules.find((r) => r.kind === 'node_offline' && r.builtin)!;
    await call(apiB.PATCH('/api/v1/alert-rules/{id}', { params: { path: { id: offlineRule.id } }, body: { for_s: 5 } }));
    await waitFor(async () => (await getNode(apiB, node.id)).status === 'online', 10_000, 'pi-stranded online');

    const stopFile = path.join(tempDir(), 'stop');
    const writer = steadyDemo(demoEnv(), 'counter', { stopFile, rate: 50, max: 5000, prefix: 'seq' });
    const storedCount = async () => (await demos(apiB)).find((d) => d.demo === 'counter')?.line_count ?? 0;
    await waitFor(async () => (await storedCount()) >= 50, 15_000, 'the counter under way');

    const follow = dvic.start(['logs', NODE, '--demo', 'counter', '-f', '-n', '1000']);
    const connectedToB = () => agent.output.split(`connected to ${b.agentUrl}`).length - 1;
    expect(b.output).not.toContain(ELECTED); // A leads: killing it kills the leader
    const killedAt = Date.now();
    await a.kill('SIGKILL');
    await waitFor(() => connectedToB() > 0, MOVE_BOUND_MS + 5000, 'the agent connected to B');
    const movedInMs = Date.now() - killedAt;
    console.log(`the agent moved to B in ${movedInMs} ms (bound ${MOVE_BOUND_MS} ms: cap ${BACKOFF_CAP_S} s + lease ${LEASE_S} s + 5 s)`);
    expect(movedInMs).toBeLessThanOrEqual(MOVE_BOUND_MS);
    await b.waitForOutput(ELECTED, 15_000);

    // The demo goes on writing through B; then it stops and every line is stored once.
    const before = await storedCount();
    await waitFor(async () => (await storedCount()) >= before + 100, 20_000, 'lines stored through B');
    fs.writeFileSync(stopFile, '');
    const count = await linesWritten(writer);
    const stored = async () => (await allRecords(apiB, { demo: 'counter' })).map((r) => r.message);
    // Compared whole either way: a line lost or doubled shows in the difference.
    const lines = await waitFor(async () => { const l = await stored(); return l.length >= count && l; }, 20_000, `${count} lines of counter stored`).catch(stored);
    expect(lines).toEqual(Array.from({ length: count }, (_, i) => `seq ${i}`));
    // B's live follow, from before the kill to the last line: none twice, in order, to the end.
    // Not yet "every line": a batch A committed and had no time to announce before it died is
    // stored (the agent's resend is a no-op on B) but reaches no follower on B (docs/scale-out.md,
    // What remains 2). Each run so far printed every line.
    const followed = () => [...follow.output.matchAll(/ seq (\d+)$/gm)].map((m) => Number(m[1]));
    await waitFor(() => followed().includes(count - 1), 15_000, 'the last line followed on B');
    await follow.kill('SIGINT');
    expect(followed()).toEqual([...new Set(followed())].sort((x, y) => x - y));
    expect(followed().at(-1)).toBe(count - 1);

    // After the failover: the crash told by A resolves (told by B), the stranded node is offline (told by B).
    pythonDemo(demoEnv(), 'kiosk', 1, { holdS: 120, prefix: 'kiosk again' });
    const told = (text: string, timeoutMs: number) => waitFor(() => toldAlerts(receiver).includes(text), timeoutMs, `"${text}" told`);
    await told(`resolved kiosk crashed on ${NODE}`, 20_000);
    await told('firing pi-stranded is offline', 30_000);
    // B's relay sent what A left unsent as it was elected; a second telling of these would follow
    // them within the group wait (300 ms): 3 s of quiet, then the whole list.
    await sleep(3000);
    expect(toldAlerts(receiver).sort()).toEqual([`firing kiosk crashed on ${NODE}`, 'firing pi-stranded is offline', `resolved kiosk crashed on ${NODE}`].sort());
  });
});
