// The dashboard in real Chromium against the real server and the real agent.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '@dvic/protocol';
import { connectAgent, type SimulatedAgent } from '../server/test/support/simulated-agent.mjs';
import { call, enroll, getNode, signIn, type Api } from './support/api.js';
import { chromiumMissing, launchChromium, screenshot } from './support/browser.js';
import { linesWritten, pythonDemo, steadyDemo } from './support/demos.js';
import {
  ADMIN_PASSWORD, Proc, PYTHON, repoDir, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess,
} from './support/processes.js';

const missing = chromiumMissing() ?? (fs.existsSync(path.join(repoDir, 'dashboard/dist/index.html')) ? null : 'dashboard not built (npm run build)');
// Under CI a missing dependency is a failure, never a skip.
const skip = missing !== null && process.env.CI !== 'true';
const requireDependencies = () => { if (missing) throw new Error(missing); };

async function signInPage(page: Page, baseUrl: string): Promise<void> {
  await page.goto(baseUrl);
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

/** The log lines on screen, top to bottom. */
const shownMessages = (page: Page) => page.locator('.log-line .message').allTextContents();
const shownIds = (page: Page) => page.locator('.log-line').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-id'))));
const ticks = (count: number, prefix: string) => Array.from({ length: count }, (_, i) => `${prefix} ${i}`);

describe.skipIf(skip)('dashboard in Chromium', () => {
  // The server also enrolls and runs the agent of this machine, as `npm start` does.
  const SERVER_ENV = { DVIC_METRICS_INTERVAL_S: '1', DVIC_LOCAL_AGENT: '1', DVIC_PING_INTERVAL_MS: '500' };
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let api: Api;
  let node: { id: string; name: string };
  let configPath: string;
  let agent: Proc;
  let logDir: string;

  beforeAll(async () => {
    requireDependencies();
    server = await startServer({ env: SERVER_ENV });
    api = await signIn(server.baseUrl);
    const created = await enroll(api, 'lab-pc', { room: 'hall' });
    node = created.node;
    logDir = tempDir('dvic-dash-logs-');
    configPath = writeAgentConfig(tempDir(), created.config, { metrics_interval_s: 1, log_dir: logDir });
    agent = startAgent(configPath);
    await waitFor(async () => (await getNode(api, node.id)).hardware, 15_000, 'agent reporting');
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });
  afterAll(async () => {
    await browser?.close();
    await stopAll();
  });

  const row = () => page.locator('.node-row[data-node="lab-pc"]');
  const localRow = () => page.locator(`.node-row[data-node="${os.hostname()}"]`);
  /** The agent the server runs for this machine. */
  const localAgentPid = () => Number(fs.readdirSync('/proc').find((pid) => /^\d+$/.test(pid)
    && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${server.dataDir}/local-agent/agent.json`)));

  it('refuses a wrong password, then signs in and shows the local node online with a live CPU value', async () => {
    await page.goto(server.baseUrl);
    await page.getByLabel('User').fill('admn');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('wrong username or password');
    expect(await page.getByLabel('User').inputValue()).toBe('admn'); // as typed, to correct it
    await page.screenshot({ path: screenshot('login') });
    await page.getByLabel('User').fill('admin');
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await localRow().waitFor({ timeout: 15_000 });
    await expect.poll(() => localRow().locator('.status').textContent(), { timeout: 15_000 }).toMatch(/^● online/);

    // Load the CPU so the value visibly moves.
    const burner = new Proc(spawn(PYTHON, ['-c', 'import time\nend = time.time() + 20\nwhile time.time() < end: pass']));
    const first = await localRow().getByTestId('cpu').textContent();
    await expect.poll(() => localRow().getByTestId('cpu').textContent(), { timeout: 15_000 }).not.toBe(first);
    await burner.kill('SIGKILL');
    await page.screenshot({ path: screenshot('overview-online') });
  });

  it('turns the local node offline when its agent stops, and online when it starts again', async () => {
    const pid = localAgentPid();
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGSTOP'); // a stopped process answers no ping: offline within 3 pings
    try {
      await expect.poll(() => localRow().locator('.status').textContent(), { timeout: 10_000 }).toMatch(/^■ offline/);
      await expect.poll(() => page.getByTestId('node-counts').textContent()).toBe('1 online of 2');
      await page.screenshot({ path: screenshot('node-offline') });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await expect.poll(() => localRow().locator('.status').textContent(), { timeout: 40_000 }).toMatch(/^● online/);
  });

  it('shows an enrolled node going offline and back when its agent is killed and restarted', async () => {
    await agent.kill('SIGKILL');
    await expect.poll(() => row().locator('.status').textContent(), { timeout: 10_000 }).toMatch(/^■ offline/);
    agent = startAgent(configPath);
    await expect.poll(() => row().locator('.status').textContent(), { timeout: 15_000 }).toMatch(/^● online/);
  });

  it('shows a node page with live charts, and renames it', async () => {
    await row().locator('a').click();
    await page.getByRole('heading', { name: 'lab-pc' }).waitFor();
    await page.locator('.chart canvas').first().waitFor({ timeout: 10_000 });
    for (const title of ['CPU', 'Memory', 'Network']) await page.locator(`.chart[data-title="${title}"] canvas`).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: screenshot('node-detail'), fullPage: true });
    await page.getByLabel('Name').fill('lab-pc-2');
    await page.getByRole('button', { name: 'Rename' }).click();
    await expect.poll(async () => (await getNode(api, node.id)).name).toBe('lab-pc-2');
    await page.getByLabel('Name').fill('lab-pc');
    await page.getByRole('button', { name: 'Rename' }).click();
    await expect.poll(async () => (await getNode(api, node.id)).name).toBe('lab-pc');
  });

  it('opens a node page from its name in the address', async () => {
    await page.goto(`${server.baseUrl}/nodes/lab-pc`);
    await page.getByRole('heading', { name: 'lab-pc' }).waitFor();
    await expect.poll(() => page.locator('.detail .status').first().textContent()).toMatch(/online/);
  });

  it('searches demo logs and follows new lines live', async () => {
    const env = { DVIC_LOG_DIR: logDir };
    const writer = pythonDemo(env, 'dash-demo', 50, { prefix: 'frame' });
    await writer.exited;
    await waitFor(async () => (await call(api.GET('/api/v1/logs', { params: { query: { demo: 'dash-demo' } } }))).records.length === 50, 15_000, 'lines stored');
    await page.goto(`${server.baseUrl}/logs?demo=dash-demo`);
    await expect.poll(() => page.locator('.log-line').count(), { timeout: 10_000 }).toBeGreaterThan(10);
    await page.getByLabel('Text').fill('frame 42');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => shownMessages(page)).toEqual(['frame 42']);
    await page.getByLabel('Text').fill('');
    await page.getByLabel('Level ≥').selectOption('ERROR');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.locator('.log-line').count()).toBe(10);
    expect(await page.getByLabel('Level ≥').inputValue()).toBe('ERROR'); // the form shows the filter in use
    const live = pythonDemo(env, 'dash-demo', 5, { prefix: 'live-line' });
    await live.exited;
    await expect.poll(() => shownMessages(page), { timeout: 10_000 }).toContain('live-line 4');
    await page.screenshot({ path: screenshot('logs') });
  });

  it('shows each line once and in order while a demo writes as the page loads, searches and starts following again', async () => {
    const stopFile = path.join(tempDir(), 'stop');
    // At most 300 lines (tall enough a window shows them all) at 40 a second: still writing while the page acts.
    const writer = steadyDemo({ DVIC_LOG_DIR: logDir }, 'steady', { stopFile, rate: 40, max: 300, prefix: 'tick' });
    await waitFor(async () => (await call(api.GET('/api/v1/logs', { params: { query: { demo: 'steady', limit: 5 } } }))).records.length >= 5, 15_000, 'the first lines stored');
    await page.setViewportSize({ width: 1400, height: 300 * 20 + 600 });
    try {
      await page.goto(`${server.baseUrl}/logs?demo=steady`);
      await expect.poll(() => page.locator('.log-line').count(), { timeout: 10_000 }).toBeGreaterThan(5);
      await page.getByRole('button', { name: 'Search' }).click();
      await expect.poll(() => page.locator('.log-line').count(), { timeout: 10_000 }).toBeGreaterThan(5);
      await page.getByLabel('Follow').uncheck();
      await page.getByLabel('Follow').check();
      fs.writeFileSync(stopFile, '');
      const count = await linesWritten(writer);
      await expect.poll(() => shownMessages(page), { timeout: 20_000 }).toEqual(ticks(count, 'tick'));
      const ids = await shownIds(page);
      expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
    } finally {
      await page.setViewportSize({ width: 1400, height: 900 });
    }
  });

  it('types a command in the web terminal and reads its output on screen', async () => {
    await page.goto(`${server.baseUrl}/nodes/${node.id}/terminal`);
    await expect.poll(() => page.getByTestId('terminal-status').textContent(), { timeout: 15_000 }).toMatch(/shell pid/);
    // Typed before the prompt, a line may be flushed when the shell sets up its terminal.
    await expect.poll(() => page.locator('.xterm-rows').innerText(), { timeout: 15_000 }).toMatch(/[$#]\s*$/m);
    await page.locator('.xterm').click();
    await page.keyboard.type('echo $((6 * 7))');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.xterm-rows').innerText(), { timeout: 10_000 }).toMatch(/^42$/m);
    await page.screenshot({ path: screenshot('terminal') });
  });

  it('says why a terminal was refused', async () => {
    const { node: asleep } = await enroll(api, 'never-online');
    await page.goto(`${server.baseUrl}/nodes/${asleep.id}/terminal`);
    await expect.poll(() => page.getByTestId('terminal-status').textContent(), { timeout: 10_000 }).toBe('closed: node is offline');
    await call(api.POST('/api/v1/nodes/{id}/revoke', { params: { path: { id: asleep.id } }, body: {} }));
  });

  it('runs a command on the node from the commands page', async () => {
    await page.goto(`${server.baseUrl}/commands`);
    await page.getByLabel('On', { exact: true }).fill('lab-pc');
    await page.getByLabel('Command', { exact: true }).fill('echo from-the-browser');
    await page.getByRole('button', { name: 'Run' }).click();
    await expect.poll(() => page.locator('.pane pre').textContent({ timeout: 1000 }).catch(() => ''), { timeout: 15_000 }).toContain('from-the-browser');
    await expect.poll(() => page.locator('.pane .cmd-status').textContent()).toMatch(/succeeded \(0\)/);
    await page.screenshot({ path: screenshot('commands') });
  });

  it('has a wall mode for the big screen', async () => {
    await page.goto(`${server.baseUrl}/wall`);
    await page.getByTestId('wall-summary').waitFor();
    // The revoked never-online node is not down: 2 nodes counted, both online, no tile for it.
    await expect.poll(() => page.getByTestId('wall-summary').textContent()).toMatch(/2 of 2 nodes online$/);
    expect(await page.locator('.wall-tile', { hasText: 'never-online' }).count()).toBe(0);
    await page.screenshot({ path: screenshot('wall') });
  });

  describe('what agents say about themselves', () => {
    let sim: SimulatedAgent;
    const status: AgentStatus = {
      workers: [{ name: 'tailer', alive: true, restarts: 2, last_error: 'read error' }, { name: 'journal', alive: false, restarts: 5, last_error: 'gave up' }],
      problems: [{ code: 'log_file.owner_mismatch', message: 'log file owned by another user', subject: '/tmp/dvic_log_Spoof', count: 3, since: Date.now() }],
      log_files: { followed: 2, open: 2, max_open: 64, skipped: 1 },
      system_logs: { mode: 'journal', readable: false, message: 'permission denied' },
    };

    beforeAll(async () => {
      const { config } = await enroll(api, 'sim-pi');
      sim = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
      sim.send({ type: 'agent.status', data: status });
      sim.send({ type: 'demo.state', data: { full: true, demos: [
        { token: 'KioskToken000000000001', demo: 'kiosk', pid: 42, user: 'lab', alive: true, file_uid: 1000, trusted: true },
        { token: 'SpoofToken000000000001', demo: 'spoof', pid: 43, user: 'lab', alive: true, file_uid: 1001, trusted: false },
      ] } });
      sim.send({ type: 'demo.logs', id: 'b1', data: { token: 'KioskToken000000000001', demo: 'kiosk', start_offset: 0, end_offset: 2, records: [
        { ts: new Date().toISOString(), level: 'INFO', message: 'booted', offset: 0 },
        { ts: new Date().toISOString(), level: 'WARN', message: 'a rotated file was deleted before it was read', offset: 1, lost_lines: 1234 },
      ] } });
      await sim.next((m) => m.type === 'logs.ack');
    });
    afterAll(() => sim?.close());

    it('marks a node whose agent reports problems in the overview', async () => {
      await page.goto(server.baseUrl);
      const simRow = page.locator('.node-row[data-node="sim-pi"]');
      await expect.poll(() => simRow.getByTestId('agent-problems').textContent(), { timeout: 10_000 }).toBe(' ⚠ 2');
      expect(await simRow.getByTestId('agent-problems').getAttribute('title')).toBe('worker journal stopped: gave up\nlog file owned by another user (/tmp/dvic_log_Spoof) ×3');
      expect(await row().getByTestId('agent-problems').count()).toBe(0);
    });

    it('shows the agent\'s workers and problems, and the demos it does not trust, on the node page', async () => {
      await page.goto(`${server.baseUrl}/nodes/sim-pi`);
      await expect.poll(() => page.getByRole('heading', { name: /^Agent/ }).textContent(), { timeout: 10_000 }).toBe('Agent ⚠ 2 problems');
      await expect.poll(() => page.locator('.workers tbody tr').allInnerTexts()).toEqual(['tailer\trunning\t2\tread error', 'journal\t⚠ stopped\t5\tgave up']);
      expect(await page.locator('.problems tbody tr').allInnerTexts()).toEqual([expect.stringMatching(/^log file owned by another user\t\/tmp\/dvic_log_Spoof\t3×\t\d+s ago$/)]);
      expect(await page.locator('.agent-health p').textContent()).toBe('log files: 2 followed, 2 of 64 open, 1 skipped · system logs: journal (unreadable: permission denied)');
      await expect.poll(() => page.locator('tr[data-demo="spoof"]').getByTestId('untrusted').textContent()).toBe("⚠ untrusted: file owned by uid 1001, not the demo's user");
      expect(await page.locator('tr[data-demo="kiosk"]').getByTestId('untrusted').count()).toBe(0);
      await page.screenshot({ path: screenshot('node-agent-problems'), fullPage: true });
    });

    it('shows lines lost before the agent read them as a warning in the Logs view', async () => {
      await page.goto(`${server.baseUrl}/logs?node=sim-pi`);
      await expect.poll(() => shownMessages(page), { timeout: 10_000 }).toEqual(['booted', '⚠ 1,234 lines lost: a rotated file was deleted before it was read']);
      expect(await page.locator('.log-line.lost').count()).toBe(1);
    });

    it('keeps every demo of the node page when one of them writes (the live stream tells that one alone)', async () => {
      await page.goto(`${server.baseUrl}/nodes/sim-pi`);
      const lines = page.locator('tr[data-demo="kiosk"] td').nth(5);
      await expect.poll(() => lines.textContent(), { timeout: 10_000 }).toMatch(/^\d+$/);
      const before = Number(await lines.textContent());
      expect(await page.locator('tr[data-demo="spoof"]').count()).toBe(1);
      sim.send({ type: 'demo.logs', id: 'b2', data: { token: 'KioskToken000000000001', demo: 'kiosk', start_offset: 2, end_offset: 3, records: [
        { ts: new Date().toISOString(), level: 'INFO', message: 'still here', offset: 2 },
      ] } });
      await expect.poll(() => lines.textContent(), { timeout: 10_000 }).toBe(String(before + 1));
      expect(await page.locator('tr.untrusted[data-demo="spoof"]').count()).toBe(1);
    });
  });

  it('keeps following across a server restart: no line missing, none twice', async () => {
    const stopFile = path.join(tempDir(), 'stop');
    // The second half of the lines waits for the server to be back: some are surely written after it.
    const goFile = path.join(tempDir(), 'go');
    const writer = steadyDemo({ DVIC_LOG_DIR: logDir }, 'restart', { stopFile, rate: 40, max: 300, prefix: 'beat', hold: { at: 150, file: goFile } });
    await page.setViewportSize({ width: 1400, height: 300 * 20 + 600 });
    try {
      await page.goto(`${server.baseUrl}/logs?demo=restart`);
      await expect.poll(() => page.locator('.log-line').count(), { timeout: 15_000 }).toBeGreaterThan(5);
      await server.kill('SIGTERM');
      await expect.poll(() => page.getByRole('alert').first().textContent(), { timeout: 10_000 }).toMatch(/Live connection lost/);
      server = await startServer({ port: server.port, dataDir: server.dataDir, env: SERVER_ENV });
      await expect.poll(() => page.getByRole('alert').count(), { timeout: 30_000 }).toBe(0);
      const before = (await shownMessages(page)).length;
      fs.writeFileSync(goFile, '');
      await expect.poll(async () => (await shownMessages(page)).length, { timeout: 30_000 }).toBeGreaterThan(before);
      fs.writeFileSync(stopFile, '');
      const count = await linesWritten(writer);
      await expect.poll(() => shownMessages(page), { timeout: 45_000 }).toEqual(ticks(count, 'beat'));
    } finally {
      await page.setViewportSize({ width: 1400, height: 900 });
    }
  });

  it('returns to the sign-in page at once when the session ends (the server closes its live socket)', async () => {
    await page.goto(`${server.baseUrl}/`);
    await row().waitFor();
    await page.evaluate(() => fetch('/api/v1/auth/logout', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }));
    await expect.poll(() => page.getByRole('status').first().textContent(), { timeout: 10_000 }).toMatch(/session has ended/);
    await page.getByLabel('Password').waitFor();
  });
});

describe.skipIf(skip)('dashboard of a server with a full disk', () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    requireDependencies();
    // More free space kept than any disk has: the server is full from the start.
    server = await startServer({ env: { DVIC_MIN_FREE_MB: '10000000' } });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await signInPage(page, server.baseUrl);
  });
  afterAll(async () => {
    await browser?.close();
    await stopAll();
  });

  it('says so in a banner on every page, the wall included', async () => {
    const banner = page.getByTestId('storage-banner');
    await expect.poll(() => banner.textContent(), { timeout: 10_000 }).toMatch(/^⚠ The server's disk is full: new logs are refused, agents keep them until there is room \(the disk of .+ is full/);
    await page.goto(`${server.baseUrl}/wall`);
    await expect.poll(() => banner.textContent(), { timeout: 10_000 }).toMatch(/^⚠ The server's disk is full/);
    await page.screenshot({ path: screenshot('storage-full') });
  });

  it('lists the nodes an ambiguous address matches, each a link', async () => {
    const api = await signIn(server.baseUrl);
    // Ids are random: enroll until two share their first 4 characters (bounded).
    const byPrefix = new Map<string, string>();
    let twins: [string, string] | null = null;
    for (let i = 0; i < 5000 && !twins; i++) {
      const { node } = await enroll(api, `n-${i}`);
      const other = byPrefix.get(node.id.slice(0, 4));
      if (other) twins = [other, node.name];
      byPrefix.set(node.id.slice(0, 4), node.name);
    }
    expect(twins).not.toBeNull();
    const prefix = (await getNode(api, twins![0])).id.slice(0, 4);
    await page.goto(`${server.baseUrl}/nodes/${prefix}`);
    await expect.poll(() => page.getByRole('alert').locator('p').textContent(), { timeout: 10_000 }).toBe(`"${prefix}" matches 2 nodes: ${twins!.join(', ')}`);
    expect(await page.getByRole('list', { name: 'Matching nodes' }).getByRole('link').allTextContents()).toEqual(twins);
    await page.getByRole('link', { name: twins![1] }).click();
    await page.getByRole('heading', { name: twins![1] }).waitFor();
  });
});
