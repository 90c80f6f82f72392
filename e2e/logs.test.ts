// Demo logs end to end: each library writes, the real agent tails and ships, the real server
// stores; what the API shows is what the demos wrote, once, in order.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { compileCExample, nodeDemo, pythonDemo, wrapperDemo } from './support/demos.js';
import { dockerAvailable, TestDocker } from './support/docker.js';
import type { LogRecordView } from '@dvic/protocol';
import { call, enroll, getNode, signIn, type Api } from './support/api.js';
import { Proc, sleep, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess } from './support/processes.js';

afterEach(async () => { await stopAll(); });
afterAll(async () => { await stopAll(); });

async function setup(name: string, agentExtra: object = {}, serverEnv: Record<string, string> = {}) {
  const server = await startServer({ env: serverEnv });
  const api = await signIn(server.baseUrl);
  const { node, config } = await enroll(api, name);
  const logDir = tempDir('dvic-demo-logs-');
  const configPath = writeAgentConfig(tempDir(), config, { metrics_interval_s: 5, log_dir: logDir, ...agentExtra });
  const agent = startAgent(configPath);
  await waitFor(async () => (await getNode(api, node.id)).status === 'online', 15_000, 'agent online');
  return { server, api, node, logDir, configPath, agent, env: { DVIC_LOG_DIR: logDir } };
}

/** Every stored record of a demo, oldest first (walks the pages). */
async function allRecords(api: Api, demo: string): Promise<LogRecordView[]> {
  const out: LogRecordView[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const res: { records: LogRecordView[]; next_cursor: string | null } = await call(api.GET('/api/v1/logs', { params: { query: { demo, limit: 1000, ...(cursor ? { cursor } : {}) } } }));
    out.push(...res.records);
    if (!res.next_cursor) break;
    cursor = res.next_cursor;
  }
  return out.reverse();
}

async function waitForCount(api: Api, demo: string, count: number, timeoutMs = 60_000): Promise<LogRecordView[]> {
  return waitFor(async () => {
    const { demos } = await call(api.GET('/api/v1/demos'));
    const found = demos.find((d) => d.demo === demo);
    return found && found.line_count >= count ? allRecords(api, demo) : null;
  }, timeoutMs, `${count} lines of ${demo}`);
}

describe('every library reaches the server', () => {
  it('Python, Node, C, C++ and the wrapper: right level, demo and order', async () => {
    const { api, env, node } = await setup('libs-node');
    const binDir = tempDir('dvic-c-');
    const procs: Proc[] = [pythonDemo(env, 'py-demo', 200), nodeDemo(env, 'node-demo', 200)];
    for (const cpp of [false, true]) {
      procs.push(new Proc(spawn(compileCExample(binDir, cpp), ['50', cpp ? 'cpp-demo' : 'c-demo'], { env: { ...process.env, ...env } })));
    }
    procs.push(wrapperDemo(env, 'wrapped', "echo 'hello from stdout'; echo 'oops' >&2; echo 'WARN low battery'"));
    for (const p of procs) expect((await p.exited).code, p.output).toBe(0);

    const py = await waitForCount(api, 'py-demo', 200);
    expect(py.map((r) => r.message)).toEqual(Array.from({ length: 200 }, (_, i) => `line ${i}`));
    expect(py.map((r) => r.level)).toEqual(Array.from({ length: 200 }, (_, i) => ['INFO', 'INFO', 'INFO', 'WARN', 'ERROR'][i % 5]));
    expect(py.every((r) => r.node_id === node.id && r.source === 'demo')).toBe(true);
    const js = await waitForCount(api, 'node-demo', 200);
    expect(js.map((r) => `${r.level} ${r.message}`)).toEqual(Array.from({ length: 200 }, (_, i) => `${i % 5 === 4 ? 'ERROR' : 'INFO'} line ${i}`));
    for (const demo of ['c-demo', 'cpp-demo']) {
      const c = await waitForCount(api, demo, 52);
      expect(c.map((r) => `${r.level} ${r.message}`)).toEqual([...Array.from({ length: 50 }, (_, i) => `INFO frame ${i} drawn`), 'WARN multi\nline "quoted" é', 'ERROR error 42']);
    }
    const wrapped = await waitForCount(api, 'wrapped', 3);
    expect(wrapped.map((r) => `${r.level} ${r.message}`).sort()).toEqual(['ERROR oops', 'INFO hello from stdout', 'WARN low battery']);

    const { demos } = await getNode(api, node.id);
    expect(demos.map((d) => d.demo).sort()).toEqual(['c-demo', 'cpp-demo', 'node-demo', 'py-demo', 'wrapped']);
    await waitFor(async () => (await getNode(api, node.id)).demos.every((d) => !d.alive), 10_000, 'every demo reported dead after exiting');
    const py200 = (await getNode(api, node.id)).demos.find((d) => d.demo === 'py-demo');
    expect(py200).toMatchObject({ line_count: 200, error_count: 40, alive: false });
  });
});

describe('system logs', () => {
  it('ships a syslog file as source "system"', async () => {
    const syslog = `${tempDir('dvic-syslog-')}/syslog`;
    fs.writeFileSync(syslog, 'Nov 24 10:00:00 pi kernel: usb 1-1: new high-speed USB device\n');
    const { api } = await setup('syslog-node', { system_logs: 'syslog', syslog_path: syslog });
    const records = await waitFor(async () => {
      const { records: found } = await call(api.GET('/api/v1/logs', { params: { query: { source: 'system' } } }));
      return found.length ? found : null;
    }, 15_000, 'the system log line');
    expect(records[0]).toMatchObject({ source: 'system', demo: null, level: 'INFO', message: 'Nov 24 10:00:00 pi kernel: usb 1-1: new high-speed USB device' });
  });
});

describe('exactly once', () => {
  it('stores a 100,000-line stream once and in order while the server and the agent are killed at random', async () => {
    const serverEnv = { DVIC_PING_INTERVAL_MS: '2000' };
    const first = await setup('chaos', {}, serverEnv);
    const { server, env, configPath } = first;
    let agent = first.agent;
    const writer = pythonDemo(env, 'chaos', 100_000, { rate: 8000, maxBytes: 6 * 1024 * 1024, prefix: 'seq', holdS: 60 });
    let current: ServerProcess = server;
    const random = (min: number, max: number) => min + Math.random() * (max - min);
    for (let round = 0; round < 3; round++) {
      await sleep(random(1000, 3000));
      await current.kill('SIGKILL');
      await sleep(random(200, 1500));
      current = await startServer({ port: server.port, dataDir: server.dataDir, env: serverEnv });
      await sleep(random(500, 2000));
      await agent.kill('SIGKILL');
      await sleep(random(100, 1000));
      agent = startAgent(configPath);
    }
    const api = await signIn(current.baseUrl);
    const records = await waitForCount(api, 'chaos', 100_000, 120_000);
    expect(records).toHaveLength(100_000);
    const seqs = records.map((r) => Number(r.message.split(' ')[1]));
    expect(seqs.findIndex((s, i) => s !== i)).toBe(-1);
    expect(fs.readdirSync(env.DVIC_LOG_DIR).some((n) => n.endsWith('.1'))).toBe(true); // it rotated mid-stream
    await writer.kill();
  });
});

describe('containers', () => {
  const missing = dockerAvailable();
  it.skipIf(missing !== null)('discovers a demo in a Docker container, labels it, and sees it die', async () => {
    const docker = new TestDocker();
    try {
      await docker.start();
      const { api, node } = await setup('docker-host', { log_dir: '/tmp', docker_socket: docker.socket });
      const token = 'DockerDemoToken0000001x';
      const script = `st=$(cut -d' ' -f22 /proc/$$/stat); printf '{"dvic_log":1,"token":"${token}","generation":0,"demo":"in-docker","pid":%s,"start_time":%s}\\n' $$ $st > /tmp/dvic_log_${token}; printf '{"ts":"2026-11-24T10:00:00.000Z","level":"ERROR","message":"hello from the container"}\\n' >> /tmp/dvic_log_${token}; exec sleep 600`;
      const { id } = await docker.runContainer('demo-box', ['sh', '-c', script]);
      const records = await waitForCount(api, 'in-docker', 1, 30_000);
      expect(records[0]).toMatchObject({ level: 'ERROR', message: 'hello from the container', token });
      const demo = await waitFor(async () => (await getNode(api, node.id)).demos.find((d) => d.demo === 'in-docker'), 10_000, 'demo row');
      expect(demo).toMatchObject({ alive: true, container: { id, name: 'demo-box', runtime: 'docker' } });
      await docker.docker('kill', id);
      await waitFor(async () => (await getNode(api, node.id)).demos.find((d) => d.demo === 'in-docker' && !d.alive), 15_000, 'container demo dead');
    } finally {
      await docker.stop();
    }
  });
});
