// Keepalive devices in real Chromium against the real server: the list, the overview beside
// nodes, the detail page, and a device going down on screen within 2 s of its grace ending.
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, signIn, type Api } from './support/api.js';
import { chromiumMissing, launchChromium, screenshot } from './support/browser.js';
import { ADMIN_PASSWORD, repoDir, startServer, stopAll, type ServerProcess } from './support/processes.js';

const missing = chromiumMissing() ?? (fs.existsSync(path.join(repoDir, 'dashboard/dist/index.html')) ? null : 'dashboard not built (npm run build)');
const skip = missing !== null && process.env.CI !== 'true';

describe.skipIf(skip)('devices in Chromium', () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let api: Api;

  beforeAll(async () => {
    if (missing) throw new Error(missing);
    server = await startServer({ env: { DVIC_LOCAL_AGENT: '0' } });
    api = await signIn(server.baseUrl);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(server.baseUrl);
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  });
  afterAll(async () => {
    await browser?.close();
    await stopAll();
  });

  const statusOf = (name: string) => page.locator(`.device-row[data-device="${name}"] [data-testid="device-status"]`);
  const keepalive = (token: string, body: object) =>
    fetch(`${server.baseUrl}/api/v1/devices/${token}/keepalive`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('adds a device from the page: its token and URLs are shown once', async () => {
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByText('Add a device').click();
    const form = page.getByRole('form', { name: 'Add a device' });
    await form.getByLabel('Name').fill('esp32-door');
    await form.getByRole('button', { name: 'Add' }).click();
    const urls = page.getByTestId('new-device-token').getByTestId('device-url');
    await expect.poll(() => urls.count()).toBe(4);
    const keepaliveUrl = (await urls.first().textContent())!;
    expect(keepaliveUrl).toMatch(new RegExp(`^${server.baseUrl}/api/v1/devices/dvk_[A-Za-z0-9_-]+/keepalive$`));
    expect(await page.getByTestId('arduino-snippet').first().textContent()).toContain(`DvicKeepalive dvic("${server.baseUrl}", "${keepaliveUrl.split('/')[6]}")`);
    await expect.poll(() => statusOf('esp32-door').textContent()).toMatch(/new/);
    expect(await form.getByLabel('Name').inputValue()).toBe(''); // ready for the next one
    await page.screenshot({ path: screenshot('devices-added') });
  });

  it('shows a device up on its ping, late, then down within 2 s of its grace ending', async () => {
    const { token } = await call(api.POST('/api/v1/devices', { body: { name: 'esp32-fast', period_s: 3, grace_s: 2 } }));
    await statusOf('esp32-fast').waitFor();
    const sentAt = Date.now();
    expect((await keepalive(token, { status: 'ok', message: 'booted', rssi: -58, free_heap: 201000, firmware: '0.3.1' })).status).toBe(204);
    await expect.poll(() => statusOf('esp32-fast').textContent(), { timeout: 2900 }).toMatch(/up/);
    await expect.poll(() => page.locator('.device-row[data-device="esp32-fast"]').textContent()).toMatch(/rssi -58/);
    await expect.poll(() => statusOf('esp32-fast').textContent(), { timeout: 5000 }).toMatch(/late/);
    // Grace ends at sentAt + 5 s at the latest (the server received the ping after sentAt).
    await statusOf('esp32-fast').filter({ hasText: 'down' }).waitFor({ timeout: Math.max(1, sentAt + 5000 + 2000 - Date.now()) });
    expect(Date.now() - (sentAt + 5000)).toBeLessThan(2000);
    await page.screenshot({ path: screenshot('devices-down') });
  });

  it('lists devices beside nodes in the overview (kind filter), and opens the detail page', async () => {
    await page.getByRole('link', { name: 'Nodes' }).click();
    await statusOf('esp32-fast').waitFor();
    await page.getByLabel('Kind').selectOption('nodes');
    await expect.poll(() => page.locator('.device-row').count()).toBe(0);
    await page.getByLabel('Kind').selectOption('devices');
    await page.locator('.device-row[data-device="esp32-fast"] a').click();
    await page.getByRole('heading', { name: /esp32-fast/ }).waitFor();
    await expect.poll(() => page.getByTestId('last-body').textContent()).toContain('"firmware":"0.3.1"');
    await expect.poll(() => page.locator('.ping-strip .ping').count()).toBe(1);
    // The numbers come from the metric history (GET /api/v1/devices/{id}/metrics): each with its latest value.
    await expect.poll(() => page.locator('table.numbers th').allTextContents()).toEqual(['free_heap', 'rssi']);
    expect(await page.locator('table.numbers tr', { hasText: 'rssi' }).locator('td.num').textContent()).toBe('-58');
    expect(await page.locator('.transitions li').allTextContents()).toEqual([
      expect.stringMatching(/late → down/), expect.stringMatching(/up → late/), expect.stringMatching(/new → up/),
    ]);
    expect(await page.getByTestId('device-url').allTextContents()).toContain(`${server.baseUrl}/ping/<token>`);
    await page.screenshot({ path: screenshot('device-detail'), fullPage: true });
  });

  it('shows the down device as a problem on the wall, and counts the devices in its summary', async () => {
    await page.getByRole('link', { name: 'Wall' }).click();
    await page.locator('.wall-tile[data-kind="device"]', { hasText: 'esp32-fast' }).filter({ hasText: 'keepalive down' }).waitFor();
    await expect.poll(() => page.getByTestId('wall-summary').textContent()).toMatch(/0 of 1 device up/);
    await page.screenshot({ path: screenshot('wall-device-down') });
  });
});
