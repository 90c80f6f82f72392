// Demos first (issue "Demos first"): identity across restarts, expected demos, the demos page,
// the demo page, structured fields and the wall, in real Chromium against the real server, the
// real agent and real Python demos (libs/python).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabDemo } from '@dvic/protocol';
import { connectAgent, type SimulatedAgent } from '../server/test/support/simulated-agent.mjs';
import { call, enroll, signIn, type Api } from './support/api.js';
import { chromiumMissing, launchChromium, screenshot } from './support/browser.js';
import { ADMIN_PASSWORD, Proc, PYTHON, repoDir, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess } from './support/processes.js';

const missing = chromiumMissing() ?? (fs.existsSync(path.join(repoDir, 'dashboard/dist/index.html')) ? null : 'dashboard not built (npm run build)');
const skip = missing !== null && process.env.CI !== 'true';

/** A Python demo (libs/python) that logs "ready" with fields, then runs until killed (at most 3 minutes). */
function demoProcess(env: Record<string, string>, name: string, fields: Record<string, string> = {}): Proc {
  const script = `
import sys, time
sys.path.insert(0, ${JSON.stringify(path.join(repoDir, 'libs/python'))})
import dvic_log
log = dvic_log.open(demo=${JSON.stringify(name)})
log.info("camera ready", **${JSON.stringify(fields)})
print("ready", flush=True)
time.sleep(180)
`;
  return new Proc(spawn(PYTHON, ['-c', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

describe.skipIf(skip)('demos in Chromium', () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let wall: Page;
  let api: Api;
  let env: Record<string, string>;
  let nodeId: string;
  let simulated: SimulatedAgent | null = null;

  const demos = async (): Promise<LabDemo[]> => (await call(api.GET('/api/v1/demos'))).demos;
  const byName = async (name: string) => (await demos()).find((d) => d.name === name && d.node_id === nodeId);
  const demoRow = (p: Page, name: string) => p.locator(`.demo-row[data-demo="${name}"]`);

  async function signInPage(p: Page): Promise<void> {
    await p.goto(server.baseUrl);
    await p.getByLabel('Password').fill(ADMIN_PASSWORD);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('navigation', { name: 'Main' }).waitFor();
  }

  /** Starts a run of the demo and waits until the server sees it running. */
  async function startRun(name: string, runs: number, fields?: Record<string, string>): Promise<Proc> {
    const proc = demoProcess(env, name, fields);
    await proc.waitForOutput('ready');
    await waitFor(async () => {
      const d = await byName(name);
      return d && d.runs.length === runs && d.runs[0]!.alive;
    }, 15_000, `run ${runs} of ${name}`);
    return proc;
  }

  beforeAll(async () => {
    if (missing) throw new Error(missing);
    server = await startServer({ env: { DVIC_LOCAL_AGENT: '0', DVIC_LAB_TIMEZONE: 'UTC', DVIC_DEMO_RESTART_WINDOW_S: '1' } });
    api = await signIn(server.baseUrl);
    const created = await enroll(api, 'hall-pc', { room: 'hall' });
    nodeId = created.node.id;
    const logDir = tempDir('dvic-demos-logs-');
    startAgent(writeAgentConfig(tempDir(), created.config, { metrics_interval_s: 1, log_dir: logDir }));
    env = { DVIC_LOG_DIR: logDir };
    await waitFor(async () => (await call(api.GET('/api/v1/nodes/{id}', { params: { path: { id: nodeId } } }))).node.status === 'online', 15_000, 'agent online');
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await signInPage(page);
    wall = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    await signInPage(wall);
  });
  afterAll(async () => {
    simulated?.close();
    await browser?.close();
    await stopAll();
  });

  it('starts the same demo three times (killed twice): one demo, three runs, restart count 2', async () => {
    (await startRun('kiosk', 1, { camera: 'usb-0' })).signal('SIGKILL');
    await waitFor(async () => (await byName('kiosk'))?.state === 'crashed', 10_000, 'the first run crashed');
    await (await startRun('kiosk', 2, { camera: 'usb-1' })).kill('SIGTERM');
    await waitFor(async () => (await byName('kiosk'))?.state === 'stopped', 10_000, 'the second run stopped cleanly');
    await startRun('kiosk', 3, { camera: 'usb-0' });
    const kiosk = (await byName('kiosk'))!;
    expect(kiosk).toMatchObject({ restarts: 2, state: expect.stringMatching(/running|restarting/) });
    expect(kiosk.runs.map((r) => r.ended)).toEqual([null, 'killed', 'vanished']);

    await page.goto(`${server.baseUrl}/demos`);
    await expect.poll(() => demoRow(page, 'kiosk').count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => demoRow(page, 'kiosk').getAttribute('data-state'), { timeout: 10_000 }).toBe('running');
    expect(await demoRow(page, 'kiosk').locator('[role="cell"]').nth(6).textContent()).toBe('3');
    await page.screenshot({ path: screenshot('demos') });
    await demoRow(page, 'kiosk').getByRole('link', { name: 'kiosk' }).click();
    await page.getByRole('heading', { name: 'kiosk' }).waitFor();
    await expect.poll(() => page.locator('table.runs tbody tr').count()).toBe(3);
    await expect.poll(() => page.locator('.facts').textContent()).toMatch(/Restarts2 \(2 today\)/);
    await page.screenshot({ path: screenshot('demo'), fullPage: true });
  });

  it('marks it expected on its page; killed, it is down on the demos page and the wall within 2 s', async () => {
    await page.getByLabel('Expected on this node').check();
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByTestId('expected').textContent()).toBe('always');
    await page.goto(`${server.baseUrl}/demos`);
    await demoRow(page, 'kiosk').waitFor();
    await wall.goto(`${server.baseUrl}/wall`);
    await expect.poll(() => wall.getByTestId('wall-headline').textContent()).toBe('✓ All fine');
    const run = (await byName('kiosk'))!.runs[0]!;
    process.kill(run.pid, 'SIGKILL');
    const killedAt = Date.now();
    await expect.poll(() => demoRow(page, 'kiosk').getAttribute('data-down'), { timeout: 2000, interval: 50 }).toBe('true');
    await expect.poll(() => wall.locator('.wall-tile[data-kind="demo"] h2').allTextContents(), { timeout: Math.max(1, 2000 - (Date.now() - killedAt)), interval: 50 }).toEqual(['kiosk']);
    expect(await demoRow(page, 'kiosk').locator('.demo-state').textContent()).toMatch(/down · crashed/);
    expect(await wall.getByTestId('wall-headline').textContent()).toBe('⚠ 1 problem');
    await wall.screenshot({ path: screenshot('wall-problem') });
  });

  it('is not down outside its schedule', async () => {
    const id = (await byName('kiosk'))!.id;
    await page.goto(`${server.baseUrl}/demos/${id}`);
    await page.getByLabel('Only during opening hours').check();
    const hour = new Date().getUTCHours();
    const hh = (h: number) => `${String(h % 24).padStart(2, '0')}:00`;
    await page.getByLabel('Open', { exact: true }).fill(hh(hour + 2));
    await page.getByLabel('Close', { exact: true }).fill(hh(hour + 3));
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByTestId('expected').textContent()).toMatch(/outside its hours now/);
    await page.goto(`${server.baseUrl}/demos`);
    await expect.poll(() => demoRow(page, 'kiosk').getAttribute('data-down')).toBe('false');
    // Still a crash to look at (a warning), no longer down.
    await expect.poll(async () => (await wall.locator('.wall-tile[data-kind="demo"] .wall-status').allTextContents()).map((t) => t.split(' · ')[0])).toEqual(['▲ crashed']);
    // The audit page names what was changed, and shows the change readably.
    await page.goto(`${server.baseUrl}/audit`);
    const entry = page.locator('table.audit tbody tr', { hasText: 'demo.update' }).first();
    await expect.poll(() => entry.locator('td').nth(4).textContent(), { timeout: 10_000 }).toBe('demo kiosk on hall-pc');
    expect(await entry.locator('.audit-details').textContent()).toMatch(/schedule/);
  });

  it('runs the restart command set on its page through the command path, audited', async () => {
    const id = (await byName('kiosk'))!.id;
    await page.goto(`${server.baseUrl}/demos/${id}`);
    const restart = page.getByRole('group', { name: 'Demo actions' }).getByRole('button', { name: 'Restart' });
    expect(await restart.isDisabled()).toBe(true);
    await page.getByLabel('Restart', { exact: true }).fill('echo "restarted $((20 + 22))"');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => restart.isDisabled()).toBe(false);
    await restart.click();
    await expect.poll(() => page.getByTestId('demo-action-status').textContent()).toMatch(/restart: sent as a command/);
    const done = await waitFor(async () => {
      const { commands } = await call(api.GET('/api/v1/commands', { params: { query: { q: 'restarted' } } }));
      return commands.find((c) => c.status === 'succeeded') ?? null;
    }, 15_000, 'the restart command ran');
    expect(done).toMatchObject({ node_id: nodeId, exit_code: 0 });
    const { command } = await call(api.GET('/api/v1/commands/{id}', { params: { path: { id: done.id } } }));
    expect(command.stdout).toBe('restarted 42\n');
    const { entries } = await call(api.GET('/api/v1/audit', { params: { query: { action: 'demo.action' } } }));
    expect(entries[0]).toMatchObject({ target: id, outcome: 'ok' });
  });

  it('shows an unexpected demo that stopped in grey, and dismisses it', async () => {
    await page.goto(`${server.baseUrl}/demos`);
    await (await startRun('scratch', 1)).kill('SIGTERM');
    await expect.poll(() => demoRow(page, 'scratch').getAttribute('data-state'), { timeout: 10_000 }).toBe('stopped');
    // In-page code as text: this file is typed for Node, without the DOM.
    const colors = await page.evaluate<{ shown: string; grey: string }>(`(() => {
      const el = document.querySelector('.demo-row[data-demo="scratch"] .demo-state');
      const probe = document.createElement('span');
      probe.style.color = getComputedStyle(document.documentElement).getPropertyValue('--state-stopped');
      document.body.append(probe);
      const grey = getComputedStyle(probe).color;
      probe.remove();
      return { shown: getComputedStyle(el).color, grey };
    })()`);
    expect(colors.shown).toBe(colors.grey);
    expect(await demoRow(page, 'scratch').locator('.demo-state').textContent()).toMatch(/stopped/);
    await demoRow(page, 'scratch').getByRole('button', { name: 'Dismiss' }).click();
    await expect.poll(() => demoRow(page, 'scratch').count()).toBe(0);
    expect(await byName('scratch')).toBeUndefined();
  });

  it('shows structured fields as chips in the logs view and filters by one', async () => {
    await page.goto(`${server.baseUrl}/logs?demo=kiosk`);
    await expect.poll(() => page.locator('.log-line .chip[data-field="camera"]').allTextContents(), { timeout: 10_000 }).toEqual(['camera=usb-0', 'camera=usb-1', 'camera=usb-0']);
    await page.locator('.log-line .chip', { hasText: 'camera=usb-1' }).click();
    await expect.poll(() => page.locator('.log-line .chip[data-field="camera"]').allTextContents()).toEqual(['camera=usb-1']);
    expect(await page.getByTestId('field-filter').textContent()).toBe('field.camera=usb-1 ✕');
    await page.screenshot({ path: screenshot('logs-fields') });
    await page.goto(`${server.baseUrl}/logs?field.camera=usb-0`);
    await expect.poll(() => page.locator('.log-line .chip[data-field="camera"]').allTextContents(), { timeout: 10_000 }).toEqual(['camera=usb-0', 'camera=usb-0']);
  });

  it('fits 200 problem demos on a 1920x1080 and a 3840x2160 wall without scrolling, paging through them, and opens from a kiosk token', async () => {
    const other = await enroll(api, 'hall-sim', { room: 'hall' });
    simulated = await connectAgent({ url: `${server.baseUrl.replace('http', 'ws')}/api/v1/agent`, nodeId: other.node.id, privateKeyPem: other.config.private_key });
    const dead = Array.from({ length: 200 }, (_, i) => ({ token: `sim${String(i).padStart(4, '0')}aaaaaaaaaaaaaaaa`, demo: `exhibit-${String(i).padStart(3, '0')}`, pid: 1000 + i, alive: false }));
    simulated.send({ type: 'demo.state', data: { full: true, demos: dead } });
    await call(api.POST('/api/v1/demo-expectations', { body: { label: 'room=hall', name: 'exhibit-000' } }));
    const simulatedDemos = async () => (await demos()).filter((d) => d.node_id === other.node.id);
    await waitFor(async () => (await simulatedDemos()).length === 200, 15_000, '200 demos');
    for (const d of await simulatedDemos()) {
      await call(api.PATCH('/api/v1/demos/{id}', { params: { path: { id: d.id } }, body: { expected: true } }));
    }
    const { token } = await call(api.POST('/api/v1/tokens', { body: { name: 'hall tv', role: 'viewer' } }));
    for (const [width, height] of [[1920, 1080], [3840, 2160]] as const) {
      const tv = await browser.newPage({ viewport: { width, height } });
      await tv.goto(`${server.baseUrl}/wall?token=${token}`);
      await expect.poll(() => tv.getByTestId('wall-headline').textContent(), { timeout: 15_000 }).toBe('⚠ 202 problems'); // 200, exhibit-000 that the label rule expects on hall-pc too, the crashed kiosk
      expect(tv.url()).toBe(`${server.baseUrl}/wall`);
      const fit = await tv.evaluate<{ scrollW: number; scrollH: number; w: number; h: number; outside: number; tiles: number; title: number }>(`({
        scrollW: document.documentElement.scrollWidth, scrollH: document.documentElement.scrollHeight, w: innerWidth, h: innerHeight,
        outside: [...document.querySelectorAll('.wall-tile')].filter((t) => { const r = t.getBoundingClientRect(); return r.bottom > innerHeight || r.right > innerWidth; }).length,
        tiles: document.querySelectorAll('.wall-tile').length,
        title: Number.parseFloat(getComputedStyle(document.querySelector('.wall-tile h2')).fontSize),
      })`);
      expect(fit.scrollW).toBeLessThanOrEqual(fit.w);
      expect(fit.scrollH).toBeLessThanOrEqual(fit.h);
      expect(fit.outside).toBe(0);
      expect(fit.title).toBeGreaterThanOrEqual(height / 60); // readable across the room
      if (fit.tiles < 202) {
        const pages = Math.ceil(202 / fit.tiles);
        await expect.poll(() => tv.getByTestId('wall-page').textContent()).toBe(`page 1 of ${pages}`);
        await expect.poll(() => tv.getByTestId('wall-page').textContent(), { timeout: 15_000 }).toBe(`page 2 of ${pages}`);
      }
      await tv.screenshot({ path: screenshot(`wall-${width}x${height}`) });
      await tv.close();
    }
  });

  it('renders every page in both themes and at phone width (390 px) without overflowing, kept as screenshots', async () => {
    const kioskId = (await byName('kiosk'))!.id;
    const pages: [string, string][] = [['overview', '/'], ['demos', '/demos'], ['demo', `/demos/${kioskId}`], ['node', `/nodes/${nodeId}`],
      ['logs', '/logs'], ['commands', '/commands'], ['audit', '/audit'], ['users', '/users'], ['wall', '/wall']];
    const mustFitPhone = new Set(['overview', 'demos', 'demo', 'node']);
    for (const theme of ['light', 'dark']) {
      for (const [width, height, size] of [[1400, 900, 'desktop'], [390, 844, 'phone']] as const) {
        const shot = await browser.newPage({ viewport: { width, height } });
        await signInPage(shot);
        await shot.evaluate(`localStorage.setItem('dvic-theme', '${theme}')`);
        for (const [name, url] of pages) {
          await shot.goto(`${server.baseUrl}${url}`);
          await shot.waitForLoadState('networkidle');
          expect(await shot.evaluate('document.documentElement.dataset.theme'), name).toBe(theme);
          if (size === 'phone' && mustFitPhone.has(name)) {
            expect(await shot.evaluate('document.documentElement.scrollWidth'), `${name} at 390 px`).toBeLessThanOrEqual(390);
          }
          await shot.screenshot({ path: screenshot(`${name}-${theme}-${size}`), fullPage: name !== 'wall' });
        }
        await shot.close();
      }
    }
  });
});
