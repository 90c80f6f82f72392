// Demo logs end to end: each library writes, the real agent tails and ships, the real server
// stores; what the API shows is what the demos wrote, once, in order.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { getNode, signIn } from './support/api.js';
import { compileCExample, nodeDemo, pythonDemo, wrapperDemo } from './support/demos.js';
import { dockerAvailable, TestDocker } from './support/docker.js';
import { allRecords, setupNode as setup, waitForCount } from './support/logs.js';
import { Proc, sleep, startAgent, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './support/processes.js';

afterEach(async () => { await stopAll(); });
afterAll(async () => { await stopAll(); });

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

/** When "Nov 24 10:00:00" (no year, local time) was: this year, or last year if that is ahead. */
function syslogTime(month: number, day: number, hour: number): number {
  const year = new Date().getFullYear();
  const thisYear = new Date(year, month - 1, day, hour).getTime();
  return thisYear > Date.now() + 86_400_000 ? new Date(year - 1, month - 1, day, hour).getTime() : thisYear;
}

describe('system logs', () => {
  it('ships a syslog file as source "system", each line with its own time and level', async () => {
    const syslog = `${tempDir('dvic-syslog-')}/syslog`;
    fs.writeFileSync(syslog, 'Nov 24 10:00:00 pi kernel: usb 1-1: new high-speed USB device\n'
      + '<11>2026-11-25T17:30:00.123456+00:00 pi smartd[812]: disk failing\n');
    const { api } = await setup('syslog-node', { system_logs: 'syslog', syslog_path: syslog });
    const records = await waitFor(async () => {
      const found = await allRecords(api, { source: 'system' });
      return found.length >= 2 ? found : null;
    }, 15_000, 'the system log lines');
    expect(records.map((r) => [r.source, r.demo, r.level, r.message, r.ts]).sort()).toEqual([
      ['system', null, 'ERROR', 'smartd[812]: disk failing', Date.parse('2026-11-25T17:30:00.123Z')],
      ['system', null, 'INFO', 'kernel: usb 1-1: new high-speed USB device', syslogTime(11, 24, 10)],
    ]);
  });

  it('says in the node view why the journal cannot be read', async () => {
    const dir = tempDir('dvic-journal-');
    const journalctl = `${dir}/journalctl`;
    fs.writeFileSync(journalctl, "#!/bin/sh\necho 'No journal files were found.' >&2\nexit 1\n", { mode: 0o755 });
    const { api, node } = await setup('no-journal', { system_logs: 'journal', journalctl });
    const status = await waitFor(async () => {
      const view = await getNode(api, node.id);
      return view.agent_status?.system_logs?.message ? view.agent_status : null;
    }, 15_000, 'the journal status');
    expect(status.system_logs).toEqual({ mode: 'journal', readable: false, message: 'No journal files were found.' });
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
    const state = JSON.parse(fs.readFileSync(path.join(path.dirname(configPath), 'state', 'demo-log-state.json'), 'utf8'));
    expect(Object.values(state.groups as Record<string, number[]>).some((g) => g[0]! >= 1)).toBe(true); // it rotated mid-stream
    await writer.kill();
  });
});

describe('containers', () => {
  const missing = dockerAvailable();
  // Under CI a missing dependency fails the test; elsewhere it is skipped with the reason.
  it.skipIf(missing !== null && process.env.CI !== 'true')('discovers a demo in a Docker container, labels it, and sees it die', async () => {
    if (missing) throw new Error(missing);
    const docker = new TestDocker();
    try {
      await docker.start();
      // The same private path on the host and in the container: the agent never lists the machine's /tmp.
      const logDir = tempDir('dvic-docker-logs-');
      const { api, node } = await setup('docker-host', { log_dir: logDir, container_logs: true, docker_socket: docker.socket });
      const token = 'DockerDemoToken0000001x';
      const file = `${logDir}/dvic_log_${token}`;
      const script = `busybox mkdir -p ${logDir}; st=$(cut -d' ' -f22 /proc/$$/stat); printf '{"dvic_log":1,"token":"${token}","generation":0,"demo":"in-docker","pid":%s,"start_time":%s}\\n' $$ $st > ${file}; printf '{"ts":"2026-11-24T10:00:00.000Z","level":"ERROR","message":"hello from the container"}\\n' >> ${file}; exec sleep 600`;
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
