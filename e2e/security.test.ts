// The dashboard's web defences in real Chromium against the real server and the real agent: a
// page of another origin cannot open a root shell or change anything with the signed-in user's
// cookie; no page breaks its Content-Security-Policy; the Users page manages users.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, launchChromium, screenshot } from './support/browser.js';
import { call, enroll, getNode, signIn, type Api } from './support/api.js';
import {
  ADMIN_PASSWORD, freePort, repoDir, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess,
} from './support/processes.js';

const missing = chromiumMissing() ?? (fs.existsSync(path.join(repoDir, 'dashboard/dist/index.html')) ? null : 'dashboard not built (npm run build)');
if (missing && process.env.CI) throw new Error(`e2e security tests cannot run: ${missing}`);

/** The attacker's page: every way a foreign page could reach the server with the user's cookie. */
function attackerPage(target: string, nodeId: string, marker: string): string {
  const ws = target.replace('http', 'ws');
  const command = JSON.stringify({ command: `touch ${marker}` });
  return `<!doctype html><meta charset="utf-8"><title>cute cats</title>
<iframe name="sink" id="sink"></iframe>
<form id="form" method="POST" target="sink" enctype="text/plain" action="${target}/api/v1/nodes/${nodeId}/exec">
  <input name='${command.slice(0, -2)}' value='"}'>
</form>
<script>
window.results = {};
const settle = (name, value) => { if (!(name in window.results)) window.results[name] = value; };
function socket(name, url, onOpen) {
  const s = new WebSocket(url);
  s.onopen = () => { settle(name, 'opened'); onOpen(s); };
  s.onclose = (e) => settle(name, 'closed ' + e.code);
}
socket('terminal', '${ws}/api/v1/nodes/${nodeId}/terminal', (s) => s.send(new TextEncoder().encode('touch ${marker}\\r')));
socket('live', '${ws}/api/v1/live', (s) => s.send(JSON.stringify({ type: 'commands.subscribe', data: { ids: ['x'] } })));
document.getElementById('sink').addEventListener('load', () => settle('form', 'loaded'), { once: true });
document.getElementById('form').submit();
fetch('${target}/api/v1/nodes/${nodeId}/exec', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: ${JSON.stringify(command)} })
  .then(() => settle('fetch', 'sent'), () => settle('fetch', 'failed'));
</script>`;
}

describe.skipIf(missing !== null && !process.env.CI)('web security in Chromium', () => {
  let server: ServerProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let api: Api;
  let node: { id: string; name: string };
  let attacker: http.Server;
  let attackerUrl: string;
  const marker = path.join(tempDir('dvic-csrf-'), 'pwned');

  beforeAll(async () => {
    server = await startServer({ env: { DVIC_METRICS_INTERVAL_S: '1', DVIC_LOGIN_MAX_FAILURES: '3' } });
    api = await signIn(server.baseUrl);
    const created = await enroll(api, 'secure-pc');
    node = created.node;
    startAgent(writeAgentConfig(tempDir(), created.config, { metrics_interval_s: 1 }));
    await waitFor(async () => (await getNode(api, node.id)).hardware, 15_000, 'agent reporting');
    const port = await freePort();
    attackerUrl = `http://127.0.0.1:${port}/`;
    const html = attackerPage(server.baseUrl, node.id, marker);
    attacker = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
    await new Promise<void>((resolve) => attacker.listen(port, '127.0.0.1', resolve));
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    // Every Content-Security-Policy violation of every page is kept.
    await context.addInitScript({ content: `window.cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));` });
    page = await context.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (attacker ? attacker.close(resolve) : resolve(null)));
    await stopAll();
  });

  const violations = () => page.evaluate('window.cspViolations') as Promise<string[]>;

  it('signs in, and no page of the dashboard breaks its Content-Security-Policy', async () => {
    const consoleErrors: string[] = [];
    page.on('console', (m) => { if (/Content Security Policy|Refused to/.test(m.text())) consoleErrors.push(m.text()); });
    await page.goto(server.baseUrl);
    await page.getByLabel('Password').waitFor();
    expect(await violations(), 'login').toEqual([]);
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.node-row[data-node="secure-pc"]').waitFor({ timeout: 15_000 });
    expect(await violations(), 'overview').toEqual([]);
    const pages: [string, string, () => Promise<unknown>][] = [
      ['node', `/nodes/${node.id}`, () => page.locator('.chart canvas').first().waitFor({ timeout: 15_000 })],
      ['logs', '/logs', () => page.getByLabel('Text').waitFor()],
      ['terminal', `/nodes/${node.id}/terminal`, () => expect.poll(() => page.getByTestId('terminal-status').textContent(), { timeout: 15_000 }).toMatch(/shell pid/)],
      ['commands', '/commands', () => page.getByLabel('Command', { exact: true }).waitFor()],
      ['audit', '/audit', () => page.getByRole('heading', { name: 'Audit' }).waitFor()],
      ['users', '/users', () => page.locator('tr[data-user="admin"]').waitFor()],
      ['wall', '/wall', () => page.getByTestId('wall-headline').waitFor()],
    ];
    for (const [name, url, ready] of pages) {
      await page.goto(server.baseUrl + url);
      await ready();
      expect(await violations(), name).toEqual([]);
    }
    expect(consoleErrors).toEqual([]);
  });

  it('lets a page of another origin neither open a terminal or the live stream nor post a command, and audits each try', async () => {
    const before = (await call(api.GET('/api/v1/audit', { params: { query: { action: 'origin.refused' } } }))).entries.length;
    const evil = await context.newPage();
    await evil.goto(attackerUrl);
    await evil.waitForFunction("['terminal', 'live', 'form', 'fetch'].every((k) => k in window.results)", undefined, { timeout: 20_000 });
    const results = await evil.evaluate('window.results') as Record<string, string>;
    expect(results.terminal).toMatch(/^closed /);
    expect(results.live).toMatch(/^closed /);
    await evil.screenshot({ path: screenshot('security-foreign-page') });
    await evil.close();

    const refused = (await call(api.GET('/api/v1/audit', { params: { query: { action: 'origin.refused' } } }))).entries.slice(0, -before || undefined);
    expect(refused.length).toBe(4);
    for (const entry of refused) expect(entry).toMatchObject({ username: 'admin', outcome: 'denied', details: { origin: attackerUrl.slice(0, -1) } });
    expect(refused.map((e) => `${String(e.details?.method)} ${String(e.details?.url)}`).sort()).toEqual([
      'GET /api/v1/live', `GET /api/v1/nodes/${node.id}/terminal`, `POST /api/v1/nodes/${node.id}/exec`, `POST /api/v1/nodes/${node.id}/exec`,
    ]);
    // Nothing ran on the node.
    expect((await call(api.GET('/api/v1/commands', { params: { query: { node: node.id } } }))).commands).toEqual([]);
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('manages users from the Users page, and a new user changes their own password', async () => {
    await page.goto(`${server.baseUrl}/users`);
    const form = page.getByRole('form', { name: 'Add a user' });
    await form.getByLabel('Username').fill('eve');
    await form.getByLabel('Password').fill('eve-first-password');
    await form.getByLabel('Role').selectOption('viewer');
    await form.getByRole('button', { name: 'Add' }).click();
    const eve = page.locator('tr[data-user="eve"]');
    await eve.waitFor();
    await eve.getByLabel('Role of eve').selectOption('operator');
    await expect.poll(async () => (await call(api.GET('/api/v1/users'))).users.find((u) => u.username === 'eve')?.role).toBe('operator');
    await eve.getByRole('button', { name: 'Disable' }).click();
    await expect.poll(() => eve.locator('td').nth(2).textContent()).toBe('disabled');
    await eve.getByRole('button', { name: 'Enable' }).click();
    await expect.poll(() => eve.locator('td').nth(2).textContent()).toBe('enabled');
    await eve.getByRole('button', { name: 'Reset password' }).click();
    await eve.getByLabel('New password for eve').fill('eve-second-password');
    await eve.getByRole('button', { name: 'Set' }).click();
    await expect.poll(() => page.getByRole('status').first().textContent()).toMatch(/New password set for eve/);
    const lastAdmin = page.locator('tr[data-user="admin"]');
    await lastAdmin.getByLabel('Role of admin').selectOption('viewer');
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/admin is the last admin/);
    await page.screenshot({ path: screenshot('users'), fullPage: true });

    // Eve signs in elsewhere and changes her own password.
    const eveContext = await browser.newContext();
    const evePage = await eveContext.newPage();
    await evePage.goto(server.baseUrl);
    await evePage.getByLabel('User').fill('eve');
    await evePage.getByLabel('Password').fill('eve-second-password');
    await evePage.getByRole('button', { name: 'Sign in' }).click();
    await evePage.getByRole('link', { name: 'Users' }).click();
    await evePage.getByText('Only admins manage users').waitFor();
    const own = evePage.getByRole('form', { name: 'Change your password' });
    await own.getByLabel('Current password').fill('eve-second-password');
    await own.getByLabel('New password', { exact: true }).fill('eve-third-password');
    await own.getByLabel('New password again').fill('eve-third-password');
    await own.getByRole('button', { name: 'Change password' }).click();
    await expect.poll(() => own.getByRole('status').textContent()).toMatch(/Password changed/);
    await eveContext.close();

    page.once('dialog', (dialog) => void dialog.accept());
    await eve.getByRole('button', { name: 'Remove' }).click();
    await expect.poll(() => page.locator('tr[data-user="eve"]').count()).toBe(0);
  });

  it('says on the sign-in page until when sign-ins are refused after too many failures', async () => {
    const fresh = await browser.newContext();
    const login = await fresh.newPage();
    await login.goto(server.baseUrl);
    await login.getByLabel('User').fill('mallory');
    for (let i = 0; i < 3; i++) {
      await login.getByLabel('Password').fill(`guess-${i}`);
      await login.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => login.getByRole('alert').textContent()).toBe('wrong username or password');
      await login.getByRole('alert').evaluate((e) => e.remove());
    }
    await login.getByLabel('Password').fill('guess-4');
    await login.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => login.getByRole('alert').textContent()).toMatch(/^Too many failed sign-ins: try again at \d{1,2}:\d{2}:\d{2}.* \(in 10 min\)\.$/);
    await login.screenshot({ path: screenshot('login-locked') });
    await fresh.close();
  });
});
