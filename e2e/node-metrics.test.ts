// The node page's metric history in Chromium: what a reload shows, the range picker, live extension.
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultTiers } from '../server/src/metrics/metric-store.js';
import { METRICS_FILE, SqliteMetricStore } from '../server/src/metrics/sqlite-metric-store.js';
import { connectAgent, type SimulatedAgent } from '../server/test/support/simulated-agent.mjs';
import { enroll, signIn } from './support/api.js';
import { chromiumMissing, launchChromium, screenshot } from './support/browser.js';
import { ADMIN_PASSWORD, repoDir, startServer, stopAll, waitFor, type ServerProcess } from './support/processes.js';

const missing = chromiumMissing() ?? (fs.existsSync(path.join(repoDir, 'dashboard/dist/index.html')) ? null : 'dashboard not built (npm run build)');
// Under CI a missing dependency is a failure, never a skip.
const skip = missing !== null && process.env.CI !== 'true';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const PAST_CPU = 42;
const LIVE_CPU = 77;

/** 30 days of history (CPU at 42 %) written through the store's own API, as the server would have. */
async function seedHistory(dataDir: string, nodeId: string, now: number): Promise<void> {
  const budget = 64 * 1024 * 1024;
  const store = new SqliteMetricStore(path.join(dataDir, METRICS_FILE), defaultTiers(budget), budget);
  for (let t = now - 30 * DAY; t < now - 2 * MINUTE; t += 5 * MINUTE) {
    store.append(`node:${nodeId}`, t, [['cpu.total_pct', PAST_CPU], ['memory.used_bytes', 2e9], ['memory.available_bytes', 6e9]]);
  }
  await store.close();
}

describe.skipIf(skip)('node page metric history in Chromium', () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let agent: SimulatedAgent;
  let live: NodeJS.Timeout;

  beforeAll(async () => {
    if (missing) throw new Error(missing);
    const first = await startServer();
    const created = await enroll(await signIn(first.baseUrl), 'chart-pi');
    await first.kill('SIGTERM');
    await seedHistory(first.dataDir, created.node.id, Date.now());
    server = await startServer({ dataDir: first.dataDir });
    agent = await connectAgent({ url: server.agentUrl, nodeId: created.config.node_id, privateKeyPem: created.config.private_key });
    const send = () => agent.sendHardware({ cpu: { total_pct: LIVE_CPU, per_core_pct: [LIVE_CPU] } });
    send();
    live = setInterval(send, 1000);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(server.baseUrl);
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  }, 180_000);
  afterAll(async () => {
    clearInterval(live);
    agent?.close();
    await browser?.close();
    await stopAll();
  });

  const cpuChart = () => page.locator('.chart[data-title="CPU"]');
  /** The CPU total the legend shows with the cursor at this fraction of the plot's width. */
  async function cpuAt(fraction: number): Promise<string | null> {
    const over = cpuChart().locator('.u-over');
    const box = (await over.boundingBox())!;
    await page.mouse.move(box.x + box.width * fraction, box.y + box.height / 2);
    return cpuChart().locator('.u-legend .u-series', { hasText: 'total' }).locator('.u-value').textContent();
  }
  const pick = async (label: string) => {
    const answer = page.waitForResponse((r) => r.url().includes('/metrics?') && r.status() === 200);
    await page.getByRole('group', { name: 'Time range' }).getByRole('button', { name: label, exact: true }).click();
    return answer;
  };

  it('shows the past after a reload, and the newest samples at the right edge', async () => {
    await page.goto(`${server.baseUrl}/nodes/chart-pi`);
    await cpuChart().locator('canvas').waitFor({ timeout: 15_000 });
    await expect.poll(() => cpuAt(0.3), { timeout: 15_000 }).toBe(`${PAST_CPU}%`);
    await expect.poll(() => cpuAt(0.995), { timeout: 15_000 }).toBe(`${LIVE_CPU}%`);
    await page.reload();
    await cpuChart().locator('canvas').waitFor({ timeout: 15_000 });
    await expect.poll(() => cpuAt(0.3), { timeout: 15_000 }).toBe(`${PAST_CPU}%`);
    await page.screenshot({ path: screenshot('node-metrics-1h'), fullPage: true });
  });

  it('picks 15 min, 6 h, 24 h, 7 d and 30 d ranges; 7 and 30 days come from rollups', async () => {
    for (const [label, span] of [['15 min', 15 * MINUTE], ['6 h', 6 * 60 * MINUTE], ['24 h', DAY], ['7 d', 7 * DAY], ['30 d', 30 * DAY]] as const) {
      const response = await pick(label);
      const url = new URL(response.url());
      expect(Number(url.searchParams.get('to')) - Number(url.searchParams.get('from'))).toBe(span);
      const body = (await response.json()) as { series: { name: string; points: [number, number][] }[] };
      const cpu = body.series.find((s) => s.name === 'cpu.total_pct')!;
      expect(cpu.points.length).toBeLessThanOrEqual(1000);
      if (span >= 7 * DAY) {
        // Rollups: a point a step (10+ minutes), far fewer than the samples seeded every 5 minutes.
        expect(cpu.points.length).toBeLessThan(span / (5 * MINUTE) / 2);
      }
      await expect.poll(() => cpuAt(label === '15 min' ? 0.995 : 0.3), { timeout: 15_000 }).toBe(label === '15 min' ? `${LIVE_CPU}%` : `${PAST_CPU}%`);
    }
    await page.screenshot({ path: screenshot('node-metrics-30d'), fullPage: true });
  });

  it('shows a custom range typed in, and one dragged over a chart', async () => {
    await page.getByRole('group', { name: 'Time range' }).getByRole('button', { name: 'custom' }).click();
    const local = (ms: number) => new Date(ms - new Date(ms).getTimezoneOffset() * MINUTE).toISOString().slice(0, 16);
    const now = Date.now();
    await page.getByLabel('From', { exact: true }).fill(local(now - 12 * DAY));
    await page.getByLabel('To', { exact: true }).fill(local(now - 10 * DAY));
    // The 30-day range shown before refetches every minute: wait for the answer of the custom range.
    const fromOf = (r: { url(): string }) => Number(new URL(r.url()).searchParams.get('from'));
    const answer = page.waitForResponse((r) => r.url().includes('/metrics?') && Math.abs(fromOf(r) - (now - 12 * DAY)) < 2 * MINUTE, { timeout: 15_000 });
    await page.getByRole('button', { name: 'Show' }).click();
    expect(Math.abs(fromOf(await answer) - (now - 12 * DAY))).toBeLessThan(2 * MINUTE);
    await expect.poll(() => cpuAt(0.5), { timeout: 15_000 }).toBe(`${PAST_CPU}%`);
    await expect.poll(() => cpuAt(0.5), { timeout: 15_000 }).toBe(`${PAST_CPU}%`);

    const over = cpuChart().locator('.u-over');
    const box = (await over.boundingBox())!;
    const spanOf = (r: { url(): string }) => { const q = new URL(r.url()).searchParams; return Number(q.get('to')) - Number(q.get('from')); };
    const zoomed = page.waitForResponse((r) => r.url().includes('/metrics?') && spanOf(r) < 1.5 * DAY, { timeout: 15_000 });
    await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    const span = spanOf(await zoomed);
    expect(span).toBeGreaterThan(0.2 * 2 * DAY);
    expect(span).toBeLessThan(0.3 * 2 * DAY);
    await waitFor(async () => (await cpuAt(0.5)) === `${PAST_CPU}%`, 15_000, 'the zoomed chart');
  });

  it('compares one series across nodes', async () => {
    await page.goto(`${server.baseUrl}/compare?series=cpu.total_pct`);
    const chart = page.locator('.chart[data-title="cpu.total_pct"]');
    await chart.locator('canvas').waitFor({ timeout: 15_000 });
    const line = chart.locator('.u-legend .u-series', { hasText: 'chart-pi' });
    await line.waitFor({ timeout: 15_000 });
    const box = (await chart.locator('.u-over').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await expect.poll(() => line.locator('.u-value').textContent(), { timeout: 15_000 }).toBe(`${PAST_CPU}%`);
    await page.screenshot({ path: screenshot('metrics-compare'), fullPage: true });
  });
});
