// Remote control end to end: commands and terminals through the real server and the real agent.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { TERMINAL_WINDOW_BYTES } from '@dvic/protocol';
import { call, enroll, getCommand, getNode, runOn, signIn, type Api } from './support/api.js';
import { sleep, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig } from './support/processes.js';
import { openTerminal } from './support/terminal-viewer.js';

afterEach(async () => { await stopAll(); });
afterAll(async () => { await stopAll(); });

async function labWithAgents(names: string[], serverEnv: Record<string, string> = {}) {
  const server = await startServer({ env: serverEnv });
  const api = await signIn(server.baseUrl);
  const nodes = [];
  for (const name of names) {
    const { node, config } = await enroll(api, name, { room: 'hall' });
    const agent = startAgent(writeAgentConfig(tempDir(), config, { metrics_interval_s: 5 }));
    nodes.push({ node, agent });
  }
  for (const { node } of nodes) await waitFor(async () => (await getNode(api, node.id)).status === 'online', 15_000, `${node.name} online`);
  return { server, api, nodes: nodes as [typeof nodes[number], ...typeof nodes] };
}

const command = getCommand;
const finished = (api: Api, id: string, timeoutMs = 20_000) =>
  waitFor(async () => { const c = await command(api, id); return c.status !== 'running' && c.status !== 'queued' && c; }, timeoutMs, `command ${id} to end`);
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe('commands on the real agent', () => {
  it('streams output before the end, and reports exit codes and signals', async () => {
    const { api, nodes: [{ node }] } = await labWithAgents(['pi']);
    const { id } = await runOn(api, node.id, { command: 'echo first; sleep 2; echo second; echo warn >&2; exit 3' });
    const early = await waitFor(async () => { const c = await command(api, id); return c.stdout === 'first\n' && c; }, 5000, 'first line');
    expect(early.status).toBe('running');
    expect(await finished(api, id)).toMatchObject({ status: 'failed', exit_code: 3, signal: null, stdout: 'first\nsecond\n', stderr: 'warn\n', truncated: false });
    const killed = await runOn(api, node.id, { argv: ['sh', '-c', 'kill -TERM $$'] });
    expect(await finished(api, killed.id)).toMatchObject({ status: 'failed', exit_code: null, signal: 'SIGTERM' });
    const ok = await runOn(api, node.id, { argv: ['printf', '%s', 'a b; $(rm -rf /)'], env: { X: '1' }, cwd: '/tmp' });
    expect(await finished(api, ok.id)).toMatchObject({ status: 'succeeded', exit_code: 0, stdout: 'a b; $(rm -rf /)' });
    const stdin = await runOn(api, node.id, { command: 'tr a-z A-Z', stdin: 'shout\n' });
    expect((await finished(api, stdin.id)).stdout).toBe('SHOUT\n');
  });

  it('kills children and grandchildren on cancel and on timeout', async () => {
    const { api, nodes: [{ node }] } = await labWithAgents(['pi']);
    const dir = tempDir();
    for (const [mode, extra] of [['cancel', {}], ['timeout', { timeout_s: 1.5 }]] as const) {
      const pids = path.join(dir, `${mode}.pids`);
      const { id } = await runOn(api, node.id, {
        command: `sh -c 'sleep 300 & echo $! >> ${pids}; sleep 300' & echo $! >> ${pids}; sleep 300 & echo $! >> ${pids}; wait`, ...extra,
      });
      await waitFor(() => fs.existsSync(pids) && fs.readFileSync(pids, 'utf8').trim().split('\n').length === 3, 5000, 'processes started');
      const started = fs.readFileSync(pids, 'utf8').trim().split('\n').map(Number);
      expect(started.every(alive)).toBe(true);
      if (mode === 'cancel') await call(api.POST('/api/v1/commands/{id}/cancel', { params: { path: { id } }, body: {} }));
      const done = await finished(api, id);
      expect(done.status).toBe(mode === 'cancel' ? 'cancelled' : 'timed_out');
      await waitFor(() => !started.some(alive), 5000, `${mode}: every process of the group gone`);
    }
  });

  it('caps 1 MiB of output and marks it truncated', async () => {
    const { api, nodes: [{ node }] } = await labWithAgents(['pi']);
    const { id } = await runOn(api, node.id, { command: 'head -c 3000000 /dev/zero | tr "\\0" x' });
    const done = await finished(api, id);
    expect(done).toMatchObject({ status: 'succeeded', truncated: true });
    expect(done.stdout.length).toBe(1024 * 1024);
  });

  it('errors at once for an offline node, and ends a command as lost when its node is killed', async () => {
    const { api, nodes: [{ node, agent }] } = await labWithAgents(['pi']);
    const { id } = await runOn(api, node.id, { command: 'sleep 30' });
    await sleep(500);
    await agent.kill('SIGKILL');
    expect(await finished(api, id, 10_000)).toMatchObject({ status: 'lost' });
    const t0 = Date.now();
    await expect(runOn(api, node.id, { command: 'true' })).rejects.toMatchObject({ status: 409, code: 'node_offline' });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('fans out to 3 agents and returns 3 results', async () => {
    const { api } = await labWithAgents(['a', 'b', 'c']);
    const { batch_id, commands } = await call(api.POST('/api/v1/exec', { body: { targets: { label: 'room=hall' }, command: 'hostname; echo done' } }));
    expect(commands).toHaveLength(3);
    await waitFor(async () => (await call(api.GET('/api/v1/commands', { params: { query: { batch: batch_id } } }))).commands.every((c) => c.status === 'succeeded'), 15_000, '3 results');
    for (const c of commands) expect((await command(api, c.id)).stdout).toMatch(/done\n$/);
  });
});

async function sessionCookie(baseUrl: string) {
  const res = await fetch(`${baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'e2e-admin-password' }) });
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

describe('terminals on the real agent', () => {
  it('drives a real shell: size, resize, Ctrl-C, exit code, and the audit trail', async () => {
    const { server, api, nodes: [{ node }] } = await labWithAgents(['pi']);
    const term = openTerminal(server.baseUrl, await sessionCookie(server.baseUrl), node.id, 100, 30);
    await waitFor(() => term.events.some((e) => e.type === 'opened'), 10_000, 'opened');
    term.type('tput cols; tput lines\r');
    // Output lines start after "\r\n" or, with bash's bracketed-paste switch, after "\r".
    await term.until(/[\r\n]100\r\n30\r\n/);
    term.resize(132, 40);
    term.type('tput cols\r');
    await term.until(/[\r\n]132\r\n/);
    term.type('sleep 100; echo not-interrupted\r');
    await sleep(500);
    term.type('\x03');
    term.type('echo after-ctrl-c\r');
    await term.until(/[\r\n]after-ctrl-c\r\n/);
    expect(term.screen).not.toMatch(/[\r\n]not-interrupted\r\n/);
    term.type('exit 7\r');
    await waitFor(() => term.events.find((e) => e.type === 'closed'), 10_000, 'closed');
    expect(term.events.find((e) => e.type === 'closed')).toMatchObject({ exit_code: 7, reason: 'the shell exited' });
    const { entries } = await call(api.GET('/api/v1/audit', { params: { query: { q: 'terminal' } } }));
    expect(entries.map((e) => e.action)).toEqual(['terminal.close', 'terminal.open']);
    expect(entries[0]!.details!.duration_ms).toBeGreaterThan(500);
  });

  it('keeps memory bounded when a program prints without end', async () => {
    const { server, nodes: [{ node }] } = await labWithAgents(['pi']);
    const cookie = await sessionCookie(server.baseUrl);
    const ws = new WebSocket(`${server.baseUrl.replace('http', 'ws')}/api/v1/nodes/${node.id}/terminal`, { headers: { cookie } });
    let received = 0;
    ws.on('message', (data, isBinary) => { if (isBinary) received += (data as Buffer).length; });
    await new Promise((r) => ws.on('open', r));
    ws.send(Buffer.from('yes\r'));
    // A viewer that never acknowledges: the agent stops at its credit window.
    await sleep(3000);
    const stalled = received;
    await sleep(1500);
    expect(stalled).toBeGreaterThan(0);
    expect(received).toBe(stalled);
    expect(received).toBeLessThanOrEqual(TERMINAL_WINDOW_BYTES);
    ws.send(JSON.stringify({ type: 'ack', bytes: received }));
    await waitFor(() => received > stalled, 5000, 'output resumes after the ack');
    ws.send(Buffer.from('\x03'));
    ws.close();
  });
});
