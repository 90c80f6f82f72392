import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectAgent, type SimulatedAgent } from '../support/simulated-agent.mjs';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';
const missing = [PROMETHEUS, PROMTOOL].find((f) => !fs.existsSync(f));
// Under CI a missing dependency is a failure, never a skip.
const skip = missing !== undefined && process.env.CI !== 'true';

let server: TestServer;
let agent: SimulatedAgent;
let nodeId: string;
const children: ChildProcess[] = [];
const dirs: string[] = [];

beforeEach(async () => {
  server = await startTestServer();
  const { config } = await server.enroll('pi-7');
  nodeId = config.node_id;
  agent = await connectAgent({ url: server.agentUrl, nodeId, privateKeyPem: config.private_key });
  agent.sendHardware({ cpu: { total_pct: 12.5, per_core_pct: [12.5] }, temperatures: [{ sensor: 'thermal_zone0', source: 'thermal', celsius: 47.5 }] });
  await waitFor(async () => (await server.api('GET', `/api/v1/nodes/${nodeId}`)).json().node.hardware);
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
  }
  agent.close();
  await server.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

async function token(scope?: 'metrics'): Promise<string> {
  const res = await server.api('POST', '/api/v1/tokens', { name: `scraper-${Math.random()}`, ...(scope ? { scope } : {}) });
  expect(res.statusCode).toBe(201);
  return res.json<{ token: string }>().token;
}

const scrape = (bearer?: string) => server.app.inject({ method: 'GET', url: '/metrics', headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });

describe('GET /metrics', () => {
  it('exposes every node\'s latest values under the documented names, and the server\'s process metrics', async () => {
    const res = await scrape(await token('metrics'));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const labels = `node="${nodeId}",name="pi-7"`;
    for (const line of [
      `dvic_node_up{${labels}} 1`, `dvic_node_cpu_usage_ratio{${labels}} 0.125`, `dvic_node_memory_available_bytes{${labels}} 6000000000`,
      `dvic_node_filesystem_avail_bytes{${labels},mountpoint="/"} 60000000000`, `dvic_node_temp_celsius{${labels},sensor="thermal_zone0"} 47.5`,
    ]) expect(res.body.split('\n')).toContain(line);
    for (const name of ['dvic_demo_up', 'dvic_device_up', 'dvic_log_lines_total', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes']) {
      expect(res.body).toContain(`# TYPE ${name} `);
    }
  });

  it('counts a demo\'s log lines by level, and says whether the demo is up', async () => {
    const demoToken = 'k3JxV9mQ2pL8sT4wZ6yB1c';
    agent.send({ type: 'demo.state', data: { full: true, demos: [{ token: demoToken, demo: 'face-tracker', pid: 4242, alive: true }] } });
    agent.send({
      type: 'demo.logs', id: 'l-1', data: {
        token: demoToken, demo: 'face-tracker', file_generation: 0, start_offset: 0, end_offset: 150, records: [
          { ts: new Date().toISOString(), level: 'INFO', message: 'camera ready', offset: 0 },
          { ts: new Date().toISOString(), level: 'ERROR', message: 'frame dropped', offset: 50 },
          { ts: new Date().toISOString(), level: 'ERROR', message: 'frame dropped', offset: 100 },
        ],
      },
    });
    const labels = `node="${nodeId}",name="pi-7",demo="face-tracker"`;
    const bearer = await token('metrics');
    const body = await waitFor(async () => {
      const text = (await scrape(bearer)).body;
      return text.includes(`dvic_log_lines_total{${labels},level="error"} 2`) ? text : null;
    });
    expect(body.split('\n')).toContain(`dvic_log_lines_total{${labels},level="info"} 1`);
    expect(body.split('\n')).toContain(`dvic_demo_up{${labels}} 1`);
    // A revoked node's counts go with it.
    expect((await server.api('POST', `/api/v1/nodes/${nodeId}/revoke`)).statusCode).toBe(200);
    expect((await scrape(bearer)).body).not.toContain(`dvic_log_lines_total{${labels}`);
  });

  it('says whether each keepalive device is up, and gives none for a device never seen', async () => {
    const created = await server.api('POST', '/api/v1/devices', { name: 'door-esp32', node: nodeId, period_s: 60, grace_s: 30 });
    expect(created.statusCode).toBe(201);
    expect((await server.api('POST', '/api/v1/devices', { name: 'never-seen' })).statusCode).toBe(201);
    const bearer = await token('metrics');
    expect((await scrape(bearer)).body).not.toMatch(/dvic_device_up\{[^}]*device="(door-esp32|never-seen)"/);
    const ping = await server.app.inject({ method: 'POST', url: `/api/v1/devices/${created.json<{ token: string }>().token}/keepalive` });
    expect(ping.statusCode).toBe(204);
    const line = `dvic_device_up{node="${nodeId}",name="pi-7",device="door-esp32"} 1`;
    const body = await waitFor(async () => {
      const text = (await scrape(bearer)).body;
      return text.split('\n').includes(line) ? text : null;
    });
    expect(body).not.toContain('device="never-seen"');
  });

  it.skipIf(skip)('passes promtool check metrics', async () => {
    if (missing) throw new Error(`${missing} missing (apt-get install prometheus)`);
    const res = await scrape(await token('metrics'));
    const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: res.body, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('wants an API token, and a metrics token may call nothing else', async () => {
    expect((await scrape()).statusCode).toBe(401);
    expect((await scrape('dvic_not-a-token')).statusCode).toBe(401);
    const scoped = await token('metrics');
    const refused = await server.app.inject({ method: 'GET', url: '/api/v1/nodes', headers: { authorization: `Bearer ${scoped}` } });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.message).toMatch(/limited to scope metrics/);
    const full = await token();
    expect((await scrape(full)).statusCode).toBe(200);
    expect((await server.app.inject({ method: 'GET', url: '/api/v1/nodes', headers: { authorization: `Bearer ${full}` } })).statusCode).toBe(200);
    const listed = (await server.api('GET', '/api/v1/tokens')).json<{ tokens: { scope: string | null }[] }>().tokens.map((t) => t.scope);
    expect(listed).toEqual(['metrics', null]);
  });

  it.skipIf(skip)('is scraped by a real Prometheus, which answers the value back through its HTTP API', async () => {
    if (missing) throw new Error(`${missing} missing (apt-get install prometheus)`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-prometheus-'));
    dirs.push(dir);
    const target = new URL(server.baseUrl).host;
    fs.writeFileSync(path.join(dir, 'token'), await token('metrics'), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: dvic',
      `    static_configs: [{ targets: ['${target}'] }]`,
      `    authorization: { credentials_file: ${path.join(dir, 'token')} }`,
      '',
    ].join('\n'));
    const port = await freePort();
    const prometheus = spawn(PROMETHEUS, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(prometheus);
    let log = '';
    prometheus.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
    const query = encodeURIComponent(`dvic_node_cpu_usage_ratio{node="${nodeId}"}`);
    const value = await waitFor(async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${query}`);
        const body = (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
        return body.data?.result?.[0]?.value[1];
      } catch {
        return undefined; // not listening yet
      }
    }, 60_000, `Prometheus to scrape the server (its log: ${log})`);
    expect(value).toBe('0.125');
    const up = await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=up`)).json() as { data: { result: { value: [number, string] }[] } };
    expect(up.data.result[0]!.value[1]).toBe('1');
  }, 90_000);
});

/** A loopback port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
