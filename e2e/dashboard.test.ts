// The dashboard in real Chromium against the real server and the real agent.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pythonDemo } from './support/demos.js';
import { chromiumMissing, launchChromium, screenshot } from './support/browser.js';
import {
  ADMIN_PASSWORD, apiClient, Proc, PYTHON, repoDir, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess,
} from './support/processes.js';

const missing = chromiumMissing() ?? (fs.existsSync(path.join(repoDir, 'dashboard/dist/index.html')) ? null : 'dashboard not built (npm run build)');

describe.skipIf(missing !== null)('dashboard in Chromium', () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let api: Awaited<ReturnType<typeof apiClient>>;
  let node: { id: string; name: string };
  let configPath: string;
  let agent: Proc;
  let logDir: string;

  beforeAll(async () => {
    // The server also enrolls and runs the agent of this machine, as `npm start` does.
    server = await startServer({ env: { DVIC_METRICS_INTERVAL_S: '1', DVIC_LOCAL_AGENT: '1', DVIC_PING_INTERVAL_MS: '500' } });
    api = await apiClient(server.baseUrl);
    const created = await api('POST', '/api/v1/nodes', { name: 'lab-pc', labels: { room: 'hall' } });
    node = created.node;
    logDir = tempDir('dvic-dash-logs-');
    configPath = writeAgentConfig(tempDir(), created.config, { metrics_interval_s: 1, log_dir: logDir });
    agent = startAgent(configPath);
    await waitFor(async () => (await api('GET', `/api/v1/nodes/${node.id}`)).node.hardware, 15_000, 'agent reporting');
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
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('wrong username or password');
    await page.screenshot({ path: screenshot('login') });
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
    await expect.poll(() => page.locator('.chart').count()).toBe(3); // CPU, memory, network (this machine has no temperature sensor)
    await page.screenshot({ path: screenshot('node-detail'), fullPage: true });
    await page.getByLabel('Name').fill('lab-pc-2');
    await page.getByRole('button', { name: 'Rename' }).click();
    await expect.poll(async () => (await api('GET', `/api/v1/nodes/${node.id}`)).node.name).toBe('lab-pc-2');
    await page.getByLabel('Name').fill('lab-pc');
    await page.getByRole('button', { name: 'Rename' }).click();
    await expect.poll(async () => (await api('GET', `/api/v1/nodes/${node.id}`)).node.name).toBe('lab-pc');
  });

  it('searches demo logs and follows new lines live', async () => {
    const env = { DVIC_LOG_DIR: logDir };
    const writer = pythonDemo(env, 'dash-demo', 50, { prefix: 'frame' });
    await writer.exited;
    await waitFor(async () => (await api('GET', '/api/v1/logs?demo=dash-demo')).records.length === 50, 15_000, 'lines stored');
    await page.goto(`${server.baseUrl}/logs?demo=dash-demo`);
    await expect.poll(() => page.locator('.log-line').count(), { timeout: 10_000 }).toBeGreaterThan(10);
    await page.getByLabel('Text').fill('frame 42');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.locator('.log-line .message').allTextContents()).toEqual(['frame 42']);
    await page.getByLabel('Text').fill('');
    await page.getByLabel('Level ≥').selectOption('ERROR');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.locator('.log-line').count()).toBe(10);
    expect(await page.getByLabel('Level ≥').inputValue()).toBe('ERROR'); // the form shows the filter in use
    const live = pythonDemo(env, 'dash-demo', 5, { prefix: 'live-line' });
    await live.exited;
    await expect.poll(() => page.locator('.log-line .message').allTextContents(), { timeout: 10_000 }).toContain('live-line 4');
    await page.screenshot({ path: screenshot('logs') });
  });

  it('types a command in the web terminal and reads its output on screen', async () => {
    await page.goto(`${server.baseUrl}/nodes/${node.id}/terminal`);
    await expect.poll(() => page.getByTestId('terminal-status').textContent(), { timeout: 15_000 }).toMatch(/shell pid/);
    await page.locator('.xterm').click();
    await page.keyboard.type('echo $((6 * 7))');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.xterm-rows').innerText(), { timeout: 10_000 }).toMatch(/^42$/m);
    await page.screenshot({ path: screenshot('terminal') });
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
    await page.locator('.tile').first().waitFor();
    await expect.poll(() => page.locator('.wall h1').textContent()).toMatch(/All up · 2 nodes/);
    await page.screenshot({ path: screenshot('wall') });
  });

  it('returns to the sign-in page when the session ends', async () => {
    await page.goto(`${server.baseUrl}/`);
    await row().waitFor();
    await page.evaluate(() => fetch('/api/v1/auth/logout', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }));
    await page.getByRole('link', { name: 'Audit' }).click();
    await expect.poll(() => page.getByRole('status').first().textContent(), { timeout: 10_000 }).toMatch(/session has ended/);
    await page.getByLabel('Password').waitFor();
  });
});
