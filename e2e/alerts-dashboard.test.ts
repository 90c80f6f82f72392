// The alerts page in real Chromium against the real server: firing now with the badge, acknowledge,
// a mute from a node page that keeps a later crash quiet, the rule editor and a channel's "send test".
// Demo state comes from a simulated agent (server/test/support) to keep it fast.
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertWebhook } from '@dvic/protocol';
import { startReceiver, type Receiver } from '../server/test/support/http-receiver.mjs';
import { connectAgent, type SimulatedAgent } from '../server/test/support/simulated-agent.mjs';
import { call, enroll, signIn, type Api } from './support/api.js';
import { chromiumMissing, launchChromium, screenshot } from './support/browser.js';
import { ADMIN_PASSWORD, repoDir, startServer, stopAll, waitFor, type ServerProcess } from './support/processes.js';

const missing = chromiumMissing() ?? (fs.existsSync(path.join(repoDir, 'dashboard/dist/index.html')) ? null : 'dashboard not built (npm run build)');
const skip = missing !== null && process.env.CI !== 'true';

describe.skipIf(skip)('alerts page in Chromium', () => {
  let server: ServerProcess;
  let api: Api;
  let receiver: Receiver;
  let agent: SimulatedAgent;
  let browser: Browser;
  let page: Page;
  let nodeId: string;

  const crash = (demo: string) => {
    const run = { token: `tok-${demo}`.padEnd(20, '0'), demo, pid: 4242 };
    agent.send({ type: 'demo.state', data: { full: false, demos: [{ ...run, alive: true }] } });
    setTimeout(() => agent.send({ type: 'demo.state', data: { full: false, demos: [{ ...run, alive: false }] } }), 150);
  };
  const told = (demo: string) => receiver.received.some((r) => (r.json as AlertWebhook).alerts.some((a) => a.demo === demo));

  beforeAll(async () => {
    if (missing) throw new Error(missing);
    server = await startServer({ env: { DVIC_ALERT_GROUP_WAIT_MS: '100' } });
    api = await signIn(server.baseUrl);
    receiver = await startReceiver();
    await call(api.POST('/api/v1/channels', { body: { type: 'webhook', name: 'lab chat', url: `${receiver.url}/hook` } }));
    const created = await enroll(api, 'pi-lobby');
    nodeId = created.node.id;
    agent = await connectAgent({ url: server.agentUrl, nodeId, privateKeyPem: created.config.private_key });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(server.baseUrl);
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  });
  afterAll(async () => {
    agent?.close();
    await browser?.close();
    await receiver?.close();
    await stopAll();
  });

  it('shows a crash firing now with the badge on the overview; acknowledging it clears the badge', async () => {
    crash('kiosk');
    await expect.poll(() => page.getByTestId('alert-badge').textContent(), { timeout: 10_000 }).toBe('1');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: /Alerts/ }).click();
    const row = page.getByRole('table', { name: 'Firing now' }).locator('tr[data-alert="kiosk crashed on pi-lobby"]');
    await row.waitFor();
    expect(await row.locator('td').first().textContent()).toBe('critical');
    expect(await page.getByRole('table', { name: 'Rules' }).locator('tr[data-rule="Demo crashed"] td').nth(6).textContent()).toBe('1');
    await page.screenshot({ path: screenshot('alerts'), fullPage: true });
    await row.getByRole('button', { name: 'Acknowledge' }).click();
    await expect.poll(() => row.getByTestId('alert-note').textContent()).toBe('acked by admin');
    await expect.poll(() => page.getByTestId('alert-badge').count()).toBe(0);
  });

  it('mutes the node from its page: a later crash is listed muted and not sent', async () => {
    await page.goto(`${server.baseUrl}/nodes/${nodeId}`);
    await page.getByLabel('Mute pi-lobby for').selectOption('14400');
    await page.getByRole('button', { name: 'Mute alerts' }).click();
    await expect.poll(() => page.getByTestId('muted-until').textContent()).toMatch(/alerts muted until \d\d:\d\d/);
    const mutes = (await call(api.GET('/api/v1/alert-mutes'))).mutes;
    expect(mutes).toEqual([expect.objectContaining({ node_id: nodeId, demo: null, created_by: 'admin' })]);
    expect(mutes[0]!.ends_at - mutes[0]!.starts_at).toBe(4 * 3600 * 1000);

    crash('projector');
    await page.goto(`${server.baseUrl}/alerts`);
    const row = page.getByRole('table', { name: 'Firing now' }).locator('tr[data-alert="projector crashed on pi-lobby"]');
    await expect.poll(() => row.getByTestId('alert-note').textContent(), { timeout: 10_000 }).toBe('muted');
    await waitFor(async () => told('kiosk'), 5000, 'the kiosk crash was sent');
    await new Promise((r) => setTimeout(r, 500));
    expect(told('projector')).toBe(false);
    // Acknowledged and unmuted from the node page.
    await page.goto(`${server.baseUrl}/nodes/${nodeId}`);
    await expect.poll(() => page.getByTestId('firing-here').locator('a').textContent()).toBe('⚠ 2 alerts firing');
    await page.getByTestId('firing-here').getByRole('button', { name: 'Acknowledge' }).click();
    await expect.poll(async () => (await call(api.GET('/api/v1/alerts', { params: { query: { state: 'firing' } } }))).alerts.every((a) => a.acked_by === 'admin')).toBe(true);
    await page.getByRole('button', { name: 'Unmute' }).click();
    await expect.poll(async () => (await call(api.GET('/api/v1/alert-mutes'))).mutes.length).toBe(0);
  });

  it('edits a rule and sends a test through a channel, its delivery shown', async () => {
    await page.goto(`${server.baseUrl}/alerts`);
    await page.getByRole('table', { name: 'Rules' }).locator('tr[data-rule="Too hot"]').getByRole('button', { name: 'Edit' }).click();
    const editor = page.getByRole('form', { name: 'Edit Too hot' });
    await editor.getByLabel('Threshold').fill('80');
    await editor.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByRole('table', { name: 'Rules' }).locator('tr[data-rule="Too hot"] td').nth(2).textContent()).toBe('80');
    const channel = page.getByRole('table', { name: 'Channels' }).locator('tr[data-channel="lab chat"]');
    await channel.getByRole('button', { name: 'Send test' }).click();
    await expect.poll(() => channel.getByTestId('last-delivery').textContent(), { timeout: 10_000 }).toMatch(/^sent \(200\) · Test message/);
    expect(receiver.received.some((r) => (r.json as AlertWebhook).event === 'test')).toBe(true);
    await page.screenshot({ path: screenshot('alerts-rules'), fullPage: true });
  });
});
