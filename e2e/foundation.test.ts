// Foundation issue, end to end: the real server process, the real Python agent as a subprocess,
// real WebSockets on loopback.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { call, enroll, getNode, signIn, type Api } from './support/api.js';
import { startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess } from './support/processes.js';

/**
 * One server for the tests that only connect agents to it (each with nodes of its own): a server
 * start is the dearest step of a test. Tests that kill the server or set its options start their own.
 */
let shared: ServerProcess | undefined;
const sharedServer = async () => (shared ??= await startServer());

afterEach(async () => { await stopAll(shared ? [shared] : []); });
afterAll(async () => { await stopAll(); });

const readProc = (file: string) => fs.readFileSync(`/proc/${file}`, 'utf8');
const meminfoBytes = (key: string) => Number(readProc('meminfo').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))![1]) * 1024;

async function enrollAgent(api: Api, name: string, extra: object = {}) {
  const { node, config } = await enroll(api, name);
  const configPath = writeAgentConfig(tempDir(), config, { metrics_interval_s: 1, ...extra });
  return { node, config, configPath };
}

const nodeOf = getNode;

describe('npm start', () => {
  it('serves the API and lists this machine online with hardware state matching /proc', async () => {
    const server = await startServer({ command: ['npm', 'start', '--silent'], env: { DVIC_LOCAL_AGENT: '1', DVIC_METRICS_INTERVAL_S: '1' } });
    expect(server.output).toMatch(/Admin login: admin/);
    const api = await signIn(server.baseUrl);
    const local = await waitFor(async () => {
      const { nodes } = await call(api.GET('/api/v1/nodes'));
      return nodes.find((n) => n.is_local && n.status === 'online' && n.hardware);
    }, 30_000, 'the local node online with hardware');

    expect(local.name).toBe(os.hostname());
    const hw = local.hardware!;
    expect(Date.now() - local.hardware_at!).toBeLessThan(3000);
    expect(hw.host.hostname).toBe(os.hostname());
    expect(hw.host.boot_id).toBe(readProc('sys/kernel/random/boot_id').trim());
    expect(hw.host.kernel).toBe(os.release());
    expect(hw.memory.total_bytes).toBe(meminfoBytes('MemTotal'));
    expect(hw.memory.swap_total_bytes).toBe(meminfoBytes('SwapTotal'));
    expect(Math.abs(hw.memory.available_bytes - meminfoBytes('MemAvailable'))).toBeLessThan(0.1 * hw.memory.total_bytes);
    expect(hw.cpu.per_core_pct).toHaveLength(readProc('stat').split('\n').filter((l) => /^cpu\d+ /.test(l)).length);
    const [load1] = readProc('loadavg').split(' ').map(Number);
    expect(Math.abs(hw.load.load1 - load1!)).toBeLessThan(1.5);
    const uptime = Number(readProc('uptime').split(' ')[0]);
    expect(Math.abs(hw.uptime_s + (Date.now() - local.hardware_at!) / 1000 - uptime)).toBeLessThan(3);
    const pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length;
    expect(Math.abs(hw.processes - pids)).toBeLessThan(Math.max(30, pids * 0.2));
    const root = hw.filesystems.find((f) => f.mount === '/');
    if (root) {
      const st = fs.statfsSync('/');
      expect(root.size_bytes).toBe(st.blocks * st.bsize);
    }
    await server.kill();
    const exit = await server.exited;
    expect(exit.code === 0 || exit.signal === 'SIGTERM', JSON.stringify(exit)).toBe(true);
  });
});

describe('a second machine', () => {
  it('joins with the config file the API produces and keeps reporting fresh hardware state', async () => {
    const server = await sharedServer();
    const api = await signIn(server.baseUrl);
    const { node, configPath } = await enrollAgent(api, 'second-machine');
    startAgent(configPath);
    const first = await waitFor(async () => (await nodeOf(api, node.id)).hardware_at, 15_000, 'first hardware state');
    expect((await nodeOf(api, node.id)).status).toBe('online');
    await waitFor(async () => ((await nodeOf(api, node.id)).hardware_at ?? 0) > first, 5000, 'a newer hardware state');
  });
});

describe('refused agents', () => {
  it('refuses a wrong key, an unknown node and a revoked node, each with its reason, while a good node keeps reporting', async () => {
    const server = await sharedServer();
    const api = await signIn(server.baseUrl);
    const good = await enrollAgent(api, 'good');
    startAgent(good.configPath);
    await waitFor(async () => (await nodeOf(api, good.node.id)).status === 'online', 15_000, 'good online');

    const victim = await enrollAgent(api, 'victim');
    const wrongKey = startAgent(writeAgentConfig(tempDir(), { ...victim.config, private_key: good.config.private_key }));
    const unknown = startAgent(writeAgentConfig(tempDir(), { ...good.config, node_id: crypto.randomUUID() }));
    await wrongKey.waitForOutput('auth failed: bad signature', 15_000);
    await unknown.waitForOutput('unknown node', 15_000);
    expect((await nodeOf(api, victim.node.id)).status).toBe('offline');

    const revoked = await enrollAgent(api, 'revoked');
    const revokedAgent = startAgent(revoked.configPath);
    await waitFor(async () => (await nodeOf(api, revoked.node.id)).status === 'online', 15_000, 'revoked node online first');
    await call(api.POST('/api/v1/nodes/{id}/revoke', { params: { path: { id: revoked.node.id } }, body: {} }));
    await revokedAgent.waitForOutput('node revoked', 15_000);

    const stats = await call(api.GET('/api/v1/server/stats'));
    expect(stats.agent_auth_failures['auth failed: bad signature']).toBeGreaterThanOrEqual(1);
    expect(stats.agent_auth_failures['unknown node']).toBeGreaterThanOrEqual(1);
    const before = (await nodeOf(api, good.node.id)).hardware_at;
    await waitFor(async () => ((await nodeOf(api, good.node.id)).hardware_at ?? 0) > (before ?? 0), 5000, 'good node still reporting');
    expect((await nodeOf(api, good.node.id)).status).toBe('online');
  });

  it('keeps the real agent reporting while another client sends garbage, invalid and oversized frames', async () => {
    const server = await sharedServer();
    const api = await signIn(server.baseUrl);
    const good = await enrollAgent(api, 'steady');
    startAgent(good.configPath);
    await waitFor(async () => (await nodeOf(api, good.node.id)).status === 'online', 15_000, 'online');
    for (const frame of ['{not json', JSON.stringify({ type: 'hello', data: { node_id: 'x' } }), 'x'.repeat(1024 * 1024 + 1)]) {
      const ws = new WebSocket(server.agentUrl);
      await new Promise<void>((resolve) => { ws.on('message', () => ws.send(frame)); ws.on('close', () => resolve()); ws.on('error', () => resolve()); });
    }
    const before = (await nodeOf(api, good.node.id)).hardware_at;
    await waitFor(async () => ((await nodeOf(api, good.node.id)).hardware_at ?? 0) > (before ?? 0), 5000, 'still reporting');
  });
});

describe('failures and recovery', () => {
  it('brings the node back online within 30 s after the server is killed and restarted', async () => {
    const server = await startServer();
    const api = await signIn(server.baseUrl);
    const { node, configPath } = await enrollAgent(api, 'survivor');
    const agent = startAgent(configPath);
    await waitFor(async () => (await nodeOf(api, node.id)).status === 'online', 15_000, 'online');

    await server.kill('SIGKILL');
    // The server comes back once the agent has seen it gone and waits to reconnect.
    await agent.waitForOutput(/reconnecting to /, 15_000);
    const restarted = await startServer({ port: server.port, dataDir: server.dataDir });
    const started = Date.now();
    const api2 = await signIn(restarted.baseUrl);
    await waitFor(async () => (await nodeOf(api2, node.id)).status === 'online', 30_000, 'online after restart');
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('marks a killed agent offline at once, and a frozen one within 3 pings', async () => {
    const server = await startServer({ env: { DVIC_PING_INTERVAL_MS: '500' } });
    const api = await signIn(server.baseUrl);
    const killed = await enrollAgent(api, 'killed');
    const frozen = await enrollAgent(api, 'frozen');
    const killedAgent = startAgent(killed.configPath);
    const frozenAgent = startAgent(frozen.configPath);
    await waitFor(async () => (await nodeOf(api, killed.node.id)).status === 'online' && (await nodeOf(api, frozen.node.id)).status === 'online', 15_000, 'both online');

    await killedAgent.kill('SIGKILL');
    await waitFor(async () => (await nodeOf(api, killed.node.id)).status === 'offline', 1500, 'killed agent offline');

    frozenAgent.signal('SIGSTOP');
    const stoppedAt = Date.now();
    await waitFor(async () => (await nodeOf(api, frozen.node.id)).status === 'offline', 3000, 'frozen agent offline');
    expect(Date.now() - stoppedAt).toBeLessThanOrEqual(3 * 500 + 500);
    frozenAgent.signal('SIGCONT');
    await waitFor(async () => (await nodeOf(api, frozen.node.id)).status === 'online', 35_000, 'thawed agent back online');
  });

  it('stops the agent cleanly on SIGTERM, closing its socket', async () => {
    const server = await sharedServer();
    const api = await signIn(server.baseUrl);
    const { node, configPath } = await enrollAgent(api, 'stopping');
    const agent = startAgent(configPath);
    await waitFor(async () => (await nodeOf(api, node.id)).status === 'online', 15_000, 'online');
    const t0 = Date.now();
    await agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3000);
    await waitFor(async () => (await nodeOf(api, node.id)).status === 'offline', 2000, 'offline after clean stop');
  });
});

describe('agent configuration errors', () => {
  it('exit with code 2 and one clear line for a missing or broken config', async () => {
    const dir = tempDir();
    const broken = path.join(dir, 'broken.json');
    fs.writeFileSync(broken, '{"server_url": ');
    for (const configPath of [path.join(dir, 'missing.json'), broken]) {
      const agent = startAgent(configPath);
      expect((await agent.exited).code).toBe(2);
      const lines = agent.output.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(configPath);
    }
  });
});
