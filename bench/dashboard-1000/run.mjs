#!/usr/bin/env node
/* global window, PerformanceObserver -- code inside page.evaluate() runs in the browser */
// bench/dashboard-1000: the dashboard in headless Chromium while 1,000 simulated agents report
// every 5 s, each running 5 demos (5,000) and restarting one of them every tick. Prints, for the
// overview, the demos page and the wall: time to first render, main-thread busy time per live
// message, per-frame cost, long tasks, JS heap.
//   NODES=1000 DEMOS_PER_NODE=5 INTERVAL_S=5 MEASURE_S=30 node bench/dashboard-1000/run.mjs   (needs npm run build)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';
import { machine } from '../lib/process-stats.mjs';
import { repoDir, startServer } from '../lib/server.mjs';

const NODES = Number(process.env.NODES ?? 1000);
const INTERVAL_S = Number(process.env.INTERVAL_S ?? 5);
const MEASURE_S = Number(process.env.MEASURE_S ?? 30);
const DEMOS_PER_NODE = Number(process.env.DEMOS_PER_NODE ?? 5);
const percentile = (values, p) => (values.length ? [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))] : 0);

console.log(`dashboard-1000: ${NODES} nodes (${NODES * DEMOS_PER_NODE} demos) reporting every ${INTERVAL_S} s, measured over ${MEASURE_S} s per page`);
console.log(`machine: ${machine()}`);
const server = await startServer({ DVIC_METRICS_INTERVAL_S: String(INTERVAL_S) });
let sim;
let browser;
try {
  const nodes = [];
  for (let i = 0; i < NODES; i++) nodes.push((await server.api('POST', '/api/v1/nodes', { name: `exhibit-${String(i).padStart(4, '0')}`, labels: { room: `hall-${i % 8}` } })).config);
  const nodesFile = path.join(os.tmpdir(), `dvic-bench-dash-${process.pid}.json`);
  fs.writeFileSync(nodesFile, JSON.stringify(nodes), { mode: 0o600 });
  sim = spawn(process.execPath, [path.join(repoDir, 'bench/agents-load/simulate.mjs'), nodesFile, server.agentUrl, String(INTERVAL_S), String(3 * MEASURE_S + 240), '200', String(DEMOS_PER_NODE)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => readline.createInterface({ input: sim.stdout }).on('line', (l) => { if (JSON.parse(l).event === 'connected') resolve(); }));
  fs.rmSync(nodesFile);
  await new Promise((r) => setTimeout(r, (INTERVAL_S + 1) * 1000));

  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  await page.goto(server.base);
  await page.getByLabel('Password').fill('bench-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.node-row').first().waitFor({ timeout: 60_000 });

  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  await cdp.send('Network.enable');
  let frames = 0;
  cdp.on('Network.webSocketFrameReceived', () => { frames++; });
  const metric = async (name) => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === name).value;

  /** A fresh load of a page: first render (its performance mark), then the cost of MEASURE_S of live updates. */
  async function measure(label, url, mark, count) {
    await page.goto(url);
    await page.waitForFunction((name) => performance.getEntriesByName(name).length > 0, mark, { timeout: 60_000 });
    const firstRender = await page.evaluate((name) => performance.getEntriesByName(name)[0].startTime, mark);
    const shown = await count();
    await page.evaluate(() => {
      window.__long = [];
      new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__long.push(e.duration); }).observe({ type: 'longtask', buffered: false });
      performance.clearMeasures('dvic:batch');
    });
    frames = 0;
    const task0 = await metric('TaskDuration');
    const script0 = await metric('ScriptDuration');
    await new Promise((r) => setTimeout(r, MEASURE_S * 1000));
    const task = (await metric('TaskDuration')) - task0;
    const script = (await metric('ScriptDuration')) - script0;
    const heap = await metric('JSHeapUsedSize');
    const batches = await page.evaluate(() => performance.getEntriesByName('dvic:batch').map((e) => e.duration));
    const longTasks = await page.evaluate(() => window.__long);
    console.log('');
    console.log(`== ${label}`);
    console.log(`time to first render:            ${firstRender.toFixed(0)} ms (${shown})`);
    console.log(`live messages received:          ${frames} (${(frames / MEASURE_S).toFixed(0)}/s)`);
    console.log(`main thread busy:                ${((100 * task) / MEASURE_S).toFixed(1)} % (script ${((100 * script) / MEASURE_S).toFixed(1)} %)`);
    console.log(`cost per live message:           ${((task * 1e6) / Math.max(1, frames)).toFixed(0)} µs of main-thread time`);
    console.log(`per-frame batch apply:           mean ${(batches.reduce((a, b) => a + b, 0) / Math.max(1, batches.length)).toFixed(2)} ms, p95 ${percentile(batches, 95).toFixed(2)} ms over ${batches.length} batches`);
    console.log(`long tasks (> 50 ms):            ${longTasks.length}${longTasks.length ? `, longest ${Math.max(...longTasks).toFixed(0)} ms` : ''}`);
    console.log(`JS heap used:                    ${(heap / 1024 / 1024).toFixed(1)} MiB`);
  }

  await measure('overview', server.base, 'dvic:first-render', async () => `${await page.locator('.node-row').count()} rows drawn, ${NODES} nodes in state`);
  if (DEMOS_PER_NODE) {
    await measure('demos page', `${server.base}/demos`, 'dvic:demos-first-render', async () => `${await page.locator('.demo-row[data-demo]').count()} rows drawn, ${await page.getByTestId('demo-counts').textContent()}`);
    await page.setViewportSize({ width: 1920, height: 1080 });
    await measure('wall (1920x1080)', `${server.base}/wall`, 'dvic:wall-first-render', async () => `${await page.locator('.wall-tile').count()} tiles, ${await page.getByTestId('wall-summary').textContent()}`);
  }
} finally {
  await browser?.close();
  sim?.kill('SIGTERM');
  await server.stop();
}
process.exit(0);
