// The deploy page in real Chromium: upload an artifact, deploy it to a real agent, watch the
// node's progress reach done, roll it back.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enroll, getNode, signIn } from './support/api.js';
import { chromiumMissing, launchChromium, screenshot } from './support/browser.js';
import { ADMIN_PASSWORD, repoDir, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess } from './support/processes.js';

const missing = chromiumMissing() ?? (fs.existsSync(path.join(repoDir, 'dashboard/dist/index.html')) ? null : 'dashboard not built (npm run build)');
// Under CI a missing dependency is a failure, never a skip.
const skip = missing !== null && process.env.CI !== 'true';

describe.skipIf(skip)('deploy page in Chromium', () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  const root = tempDir('dvic-dash-deploy-root-');

  beforeAll(async () => {
    if (missing) throw new Error(missing);
    server = await startServer();
    const api = await signIn(server.baseUrl);
    const { node, config } = await enroll(api, 'kiosk-pi', { room: 'hall' });
    startAgent(writeAgentConfig(tempDir(), config, { deploy_roots: [root] }));
    await waitFor(async () => (await getNode(api, node.id)).status === 'online', 20_000, 'agent online');
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await stopAll();
  });

  it('uploads an artifact, deploys it with per-node progress to done, and rolls it back', async () => {
    await page.goto(server.baseUrl);
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Deploy' }).click();
    fs.writeFileSync(path.join(root, 'demo.bin'), 'the previous version\n');

    const dir = tempDir();
    const file = path.join(dir, 'demo.bin');
    const content = crypto.randomBytes(3 * 1024 * 1024);
    fs.writeFileSync(file, content);
    const upload = page.getByRole('form', { name: 'Upload an artifact' });
    await upload.getByLabel('File').setInputFiles(file);
    await upload.getByLabel('Version').fill('2.0');
    await upload.getByRole('button', { name: 'Upload' }).click();
    const sha256 = crypto.createHash('sha256').update(content).digest('hex');
    const row = page.locator('tr[data-artifact="demo.bin@2.0"]');
    await expect.poll(() => row.locator('code').getAttribute('title'), { timeout: 15_000 }).toBe(sha256);
    expect(await row.textContent()).toContain('3.0 MiB');

    const form = page.getByRole('form', { name: 'Deploy an artifact' });
    await form.getByLabel('Targets').fill('room=hall');
    await form.getByLabel('Path').fill(`${root}/demo.bin`);
    await form.getByLabel('Mode').fill('0640');
    await form.getByRole('button', { name: 'Deploy' }).click();
    const nodeRow = page.locator('.deploy-node[data-node="kiosk-pi"]');
    await expect.poll(() => nodeRow.locator('.result').textContent(), { timeout: 30_000 }).toBe('done');
    expect(await nodeRow.locator('.step').textContent()).toBe('done');
    expect(await nodeRow.locator('progress').getAttribute('value')).toBe('100');
    expect(await nodeRow.locator('.message').textContent()).toBe(`sha256 ${sha256} verified`);
    expect(await page.locator('.deployment .deploy-state').textContent()).toBe('done');
    expect(fs.readFileSync(path.join(root, 'demo.bin')).equals(content)).toBe(true);
    await page.screenshot({ path: screenshot('deploy'), fullPage: true });

    await page.getByRole('button', { name: 'Roll back' }).click();
    await expect.poll(() => nodeRow.locator('.result').textContent(), { timeout: 30_000 }).toBe('rolled_back');
    expect(fs.readFileSync(path.join(root, 'demo.bin'), 'utf8')).toBe('the previous version\n');
  }, 90_000);
});
