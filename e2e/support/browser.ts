// Debian's Chromium driven by playwright-core (never a downloaded browser).
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { repoDir } from './processes.js';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = path.join(repoDir, 'artifacts/screenshots');

export function chromiumMissing(): string | null {
  return fs.existsSync(CHROMIUM) ? null : `${CHROMIUM} missing (apt-get install chromium)`;
}

export async function launchChromium(): Promise<Browser> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
  });
}

export const screenshot = (name: string) => path.join(SCREENSHOTS, `${name}.png`);

/** A new page of the dashboard, signed in as the admin. */
export async function signedInPage(browser: Browser, baseUrl: string, password: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(baseUrl);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  return page;
}

/** Counts the page's live frames of one message type (`"node.hardware"`...), from now on. */
export function countLiveFrames(page: Page, type: string): () => number {
  let count = 0;
  const needle = `"type":"${type}"`;
  page.on('websocket', (socket) => {
    socket.on('framereceived', ({ payload }) => { if (String(payload).includes(needle)) count++; });
  });
  return () => count;
}
