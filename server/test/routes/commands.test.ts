import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AuditEntryView, CommandView } from '@dvic/protocol';
import { connectAgent } from '../support/simulated-agent.mjs';
import { hashPassword } from '../../src/services/passwords.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

let server: TestServer;
beforeEach(async () => { server = await startTestServer({ DVIC_EXEC_OUTPUT_MAX_BYTES: '2048' }); });
afterEach(async () => { await server.close(); });

const CAPS = ['hardware', 'exec', 'terminal'];

async function onlineAgent(name: string, labels?: Record<string, string>) {
  const { config } = await server.enroll(name, labels);
  const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: CAPS });
  return { agent, nodeId: config.node_id, config };
}

const getCommand = async (id: string) => (await server.api('GET', `/api/v1/commands/${id}`)).json().command;
const audit = async (query = '') => (await server.api('GET', `/api/v1/audit?${query}`)).json().entries;

describe('exec on one node', () => {
  it('streams output before the result and records exit code, user and timings', async () => {
    const { agent, nodeId } = await onlineAgent('pi');
    const res = await server.api('POST', `/api/v1/nodes/${nodeId}/exec`, { command: 'echo hi; sleep 1; echo bye', timeout_s: 5 });
    expect(res.statusCode).toBe(202);
    const { id } = res.json();
    const request = await agent.nextOf('exec.request');
    expect(request.data).toMatchObject({ command_id: id, command: 'echo hi; sleep 1; echo bye', timeout_s: 5, max_output_bytes: 2048 });
    agent.send({ type: 'exec.output', data: { command_id: id, stream: 'stdout', seq: 0, data: 'hi\n' } });
    await waitFor(async () => (await getCommand(id)).stdout === 'hi\n', 3000, 'streamed output');
    expect((await getCommand(id)).status).toBe('running');
    agent.send({ type: 'exec.output', data: { command_id: id, stream: 'stderr', seq: 1, data: 'warn\n' } });
    agent.send({ type: 'exec.result', data: { command_id: id, exit_code: 3, signal: null, duration_ms: 1005 } });
    const done = await waitFor(async () => { const c = await getCommand(id); return c.status !== 'running' && c; }, 3000, 'result');
    expect(done).toMatchObject({ status: 'failed', exit_code: 3, stdout: 'hi\n', stderr: 'warn\n', user: 'admin', duration_ms: 1005, truncated: false });
    const history = (await server.api('GET', `/api/v1/commands?node=pi&q=sleep`)).json().commands;
    expect(history.map((c: CommandView) => c.id)).toEqual([id]);
    expect((await audit('action=exec'))[0]).toMatchObject({ username: 'admin', outcome: 'ok', target: nodeId, details: { id, body: { command: 'echo hi; sleep 1; echo bye' } } });
    agent.close();
  });

  it('refuses an offline node at once with 409, or queues it until it comes back', async () => {
    const { config } = await server.enroll('sleepy');
    const res = await server.api('POST', `/api/v1/nodes/${config.node_id}/exec`, { argv: ['uptime'] });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toEqual({ code: 'node_offline', message: 'node "sleepy" is offline (add queue_ttl_s to run it when it comes back)' });
    const queued = (await server.api('POST', `/api/v1/nodes/sleepy/exec`, { argv: ['uptime'], queue_ttl_s: 60 })).json();
    expect(queued.status).toBe('queued');
    const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: CAPS });
    const request = await agent.nextOf('exec.request');
    expect(request.data).toMatchObject({ command_id: queued.id, argv: ['uptime'] });
    agent.close();
  });

  it('ends a command as lost when its node drops, and as expired when the queue time passes', async () => {
    const { agent, nodeId } = await onlineAgent('flaky');
    const { id } = (await server.api('POST', `/api/v1/nodes/${nodeId}/exec`, { command: 'sleep 100' })).json();
    await agent.nextOf('exec.request');
    agent.ws.terminate();
    await waitFor(async () => (await getCommand(id)).status === 'lost', 3000, 'lost');
    expect((await getCommand(id)).error).toMatch(/disconnected/);
    const queued = (await server.api('POST', `/api/v1/nodes/${nodeId}/exec`, { command: 'true', queue_ttl_s: 0.05 })).json();
    await new Promise((r) => setTimeout(r, 100));
    // The queue is checked when the node connects again.
    server.app.agentHub.emit('connected', nodeId);
    await waitFor(async () => (await getCommand(queued.id)).status === 'expired', 3000, 'expired');
  });

  it('cancels a running command through the agent', async () => {
    const { agent, nodeId } = await onlineAgent('pi');
    const { id } = (await server.api('POST', `/api/v1/nodes/${nodeId}/exec`, { command: 'sleep 100' })).json();
    await agent.nextOf('exec.request');
    expect((await server.api('POST', `/api/v1/commands/${id}/cancel`)).statusCode).toBe(202);
    expect(await agent.nextOf('exec.cancel')).toMatchObject({ data: { command_id: id } });
    agent.send({ type: 'exec.result', data: { command_id: id, exit_code: null, signal: 'SIGKILL', duration_ms: 50, cancelled: true } });
    await waitFor(async () => (await getCommand(id)).status === 'cancelled', 3000, 'cancelled');
    expect((await server.api('POST', `/api/v1/commands/${id}/cancel`)).statusCode).toBe(409);
    agent.close();
  });

  it('keeps output up to the cap and marks the rest truncated', async () => {
    const { agent, nodeId } = await onlineAgent('chatty');
    const { id } = (await server.api('POST', `/api/v1/nodes/${nodeId}/exec`, { command: 'yes' })).json();
    for (let i = 0; i < 10; i++) agent.send({ type: 'exec.output', data: { command_id: id, stream: 'stdout', seq: i, data: 'y\n'.repeat(200) } });
    agent.send({ type: 'exec.result', data: { command_id: id, exit_code: 0, signal: null, duration_ms: 1 } });
    const done = await waitFor(async () => { const c = await getCommand(id); return c.status === 'succeeded' && c; }, 3000, 'done');
    expect(done.stdout.length).toBe(2048);
    expect(done.truncated).toBe(true);
    agent.close();
  });

  it('refuses bad bodies with 400', async () => {
    const { nodeId } = await onlineAgent('pi');
    for (const body of [{}, { command: 'id', argv: ['id'] }, { argv: [] }, { command: 'id', timeout_s: 100_000 }, { command: 'id', env: { 'A;B': 'x' } }, { command: 'id', shell: true }]) {
      const res = await server.api('POST', `/api/v1/nodes/${nodeId}/exec`, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
  });
});

describe('fan-out', () => {
  it('runs on 3 nodes by label and gives 3 results side by side', async () => {
    const agents = await Promise.all(['a', 'b', 'c'].map((n) => onlineAgent(n, { room: 'hall' })));
    await onlineAgent('elsewhere', { room: 'lab' });
    const res = await server.api('POST', '/api/v1/exec', { targets: { label: 'room=hall' }, argv: ['hostname'] });
    expect(res.statusCode).toBe(202);
    const { batch_id, commands } = res.json();
    expect(commands).toHaveLength(3);
    for (const { agent } of agents) {
      const req = await agent.nextOf('exec.request');
      agent.send({ type: 'exec.output', data: { command_id: req.data.command_id, stream: 'stdout', seq: 0, data: 'me\n' } });
      agent.send({ type: 'exec.result', data: { command_id: req.data.command_id, exit_code: 0, signal: null, duration_ms: 2 } });
    }
    await waitFor(async () => (await server.api('GET', `/api/v1/commands?batch=${batch_id}`)).json().commands.every((c: CommandView) => c.status === 'succeeded'), 3000, '3 results');
    for (const { agent } of agents) agent.close();
  });
});

describe('who may run commands', () => {
  it('refuses unauthenticated and viewer attempts, and audits them', async () => {
    const { nodeId, agent } = await onlineAgent('pi');
    const anonymous = await server.app.inject({ method: 'POST', url: `/api/v1/nodes/${nodeId}/exec`, payload: { command: 'id' } });
    expect(anonymous.statusCode).toBe(401);
    await server.app.users.create('visitor', await hashPassword('visitor-password'), 'viewer');
    const login = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'visitor', password: 'visitor-password' } });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const viewer = await server.app.inject({ method: 'POST', url: `/api/v1/nodes/${nodeId}/exec`, headers: { cookie }, payload: { command: 'id' } });
    expect(viewer.statusCode).toBe(403);
    expect(viewer.json().error.code).toBe('forbidden');
    const terminal = new WebSocket(`${server.liveUrl.replace('/live', '')}/nodes/${nodeId}/terminal`, { headers: { cookie } });
    const status = await new Promise((resolve) => terminal.on('unexpected-response', (_q, r) => resolve(r.statusCode)));
    expect(status).toBe(403);
    const denied = await audit('outcome=denied');
    expect(denied.map((e: AuditEntryView) => [e.action, e.username])).toEqual([['terminal.open', 'visitor'], ['exec', 'visitor']]);
    // No credentials at all: counted per address, written once a minute as one entry.
    await server.app.auditTrail.flushUnauthenticated();
    expect((await audit('action=auth.unauthenticated'))[0]).toMatchObject({ outcome: 'denied', details: { requests: 1, reasons: { 'sign in first': 1 } } });
    expect(agent.messages.some((m) => m.type === 'exec.request')).toBe(false);
    agent.close();
  });

  it('keeps the audit log append-only, down to the database', () => {
    const { db } = server.app;
    expect(() => db.prepare("UPDATE audit_log SET action = 'x'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_log').run()).toThrow(/append-only/);
  });
});

describe('terminal relay', () => {
  it('relays input, output, resize and credit between a viewer and the agent, and audits the session', async () => {
    const { agent, nodeId } = await onlineAgent('pi');
    const viewer = new WebSocket(`${server.liveUrl.replace('/live', '')}/nodes/${nodeId}/terminal?cols=100&rows=30`, { headers: { cookie: server.cookie } });
    const received: (string | Buffer)[] = [];
    viewer.on('message', (d, isBinary) => received.push(isBinary ? Buffer.from(d as Buffer) : d.toString()));
    const open = await agent.nextOf('terminal.open');
    expect(open.data).toMatchObject({ cols: 100, rows: 30, term: 'xterm-256color' });
    const channel = open.data.channel;
    agent.send({ type: 'terminal.opened', data: { channel, pid: 4321 } });
    await waitFor(() => received.includes(JSON.stringify({ type: 'opened', pid: 4321 })), 3000, 'opened');
    viewer.send(Buffer.from('ls\r'));
    await waitFor(() => agent.binary.length > 0, 3000, 'input at the agent');
    expect(agent.binary[0]!.toString('hex')).toBe(`01${channel.toString(16).padStart(8, '0')}${Buffer.from('ls\r').toString('hex')}`);
    const out = Buffer.concat([Buffer.from([1]), Buffer.alloc(4), Buffer.from('file.txt\r\n')]);
    out.writeUInt32BE(channel, 1);
    agent.ws.send(out, { binary: true });
    await waitFor(() => received.some((r) => Buffer.isBuffer(r) && r.toString() === 'file.txt\r\n'), 3000, 'output at the viewer');
    viewer.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }));
    expect((await agent.nextOf('terminal.resize')).data).toEqual({ channel, cols: 120, rows: 40 });
    viewer.send(JSON.stringify({ type: 'ack', bytes: 10 }));
    await waitFor(() => agent.binary.length > 1, 3000, 'credit');
    expect(agent.binary[1]!.toString('hex')).toBe(`03${channel.toString(16).padStart(8, '0')}0000000a`);
    agent.send({ type: 'terminal.close', data: { channel, exit_code: 0, reason: 'the shell exited' } });
    await waitFor(() => viewer.readyState === WebSocket.CLOSED, 3000, 'viewer closed');
    expect(received.at(-1)).toBe(JSON.stringify({ type: 'closed', exit_code: 0, reason: 'the shell exited' }));
    const entries = await audit('q=terminal');
    expect(entries.map((e: AuditEntryView) => e.action)).toEqual(['terminal.close', 'terminal.open']);
    expect(entries[0].details).toMatchObject({ exit_code: 0, channel });
    agent.close();
  });

  it('closes the agent side when the viewer goes away, and refuses an offline node', async () => {
    const { agent, nodeId } = await onlineAgent('pi');
    const viewer = new WebSocket(`${server.liveUrl.replace('/live', '')}/nodes/${nodeId}/terminal`, { headers: { cookie: server.cookie } });
    const open = await agent.nextOf('terminal.open');
    viewer.close();
    expect((await agent.nextOf('terminal.close')).data).toMatchObject({ channel: open.data.channel, reason: 'closed by the viewer' });
    agent.close();
    await waitFor(async () => (await server.api('GET', `/api/v1/nodes/${nodeId}`)).json().node.status === 'offline', 3000, 'offline');
    const late = new WebSocket(`${server.liveUrl.replace('/live', '')}/nodes/${nodeId}/terminal`, { headers: { cookie: server.cookie } });
    const closed = await new Promise<{ code: number; reason: string }>((resolve) => late.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    expect(closed).toEqual({ code: 4404, reason: 'node is offline' });
  });
});

describe('terminal sessions', () => {
  it('keeps several terminals on several nodes apart', async () => {
    const a = await onlineAgent('term-a');
    const b = await onlineAgent('term-b');
    const open = (nodeId: string) => new WebSocket(`${server.liveUrl.replace('/live', '')}/nodes/${nodeId}/terminal`, { headers: { cookie: server.cookie } });
    const viewers = [open(a.nodeId), open(a.nodeId), open(b.nodeId)];
    const opens = [await a.agent.nextOf('terminal.open'), await a.agent.nextOf('terminal.open'), await b.agent.nextOf('terminal.open')] as const;
    expect(new Set(opens.map((o) => o.data.channel)).size).toBe(3);
    await Promise.all(viewers.map((v) => new Promise((r) => (v.readyState === WebSocket.OPEN ? r(null) : v.on('open', r)))));
    viewers.forEach((v, i) => v.send(Buffer.from(`viewer ${i}`)));
    await waitFor(() => a.agent.binary.length === 2 && b.agent.binary.length === 1, 3000, 'input routed');
    const routed = (frames: Buffer[]) => frames.map((f) => [f.readUInt32BE(1), f.subarray(5).toString()]).sort();
    expect(routed(a.agent.binary)).toEqual([[opens[0].data.channel, 'viewer 0'], [opens[1].data.channel, 'viewer 1']].sort());
    expect(routed(b.agent.binary)).toEqual([[opens[2].data.channel, 'viewer 2']]);
    viewers.forEach((v) => v.close());
    a.agent.close();
    b.agent.close();
  });
});

describe('idle terminals', () => {
  it('closes a terminal nobody used for DVIC_TERMINAL_IDLE_S', async () => {
    const idle = await startTestServer({ DVIC_TERMINAL_IDLE_S: '1' });
    try {
      const { config } = await idle.enroll('sleepy-term');
      const agent = await connectAgent({ url: idle.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: CAPS });
      const viewer = new WebSocket(`${idle.liveUrl.replace('/live', '')}/nodes/${config.node_id}/terminal`, { headers: { cookie: idle.cookie } });
      const closed = new Promise<string>((resolve) => viewer.on('close', (_code, reason) => resolve(reason.toString())));
      await agent.nextOf('terminal.open');
      expect(await closed).toBe('closed after being idle');
      expect((await agent.nextOf('terminal.close')).data.reason).toBe('closed after being idle');
      agent.close();
    } finally {
      await idle.close();
    }
  });
});

describe('what a viewer sees of commands', () => {
  it('shows a viewer that a command ran but not its output, over REST and the live stream, and no server stats', async () => {
    const { agent, nodeId } = await onlineAgent('pi');
    await server.app.users.create('watcher', await hashPassword('watcher-password'), 'viewer');
    const login = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'watcher', password: 'watcher-password' } });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const { id } = (await server.api('POST', `/api/v1/nodes/${nodeId}/exec`, { command: 'cat /etc/shadow' })).json();
    await agent.next((m: { type: string }) => m.type === 'exec.request');

    const live = new WebSocket(server.liveUrl, { headers: { cookie } });
    const received: { type: string; data: { code?: string; command_id?: string } }[] = [];
    live.on('message', (d) => received.push(JSON.parse(d.toString())));
    await new Promise((resolve) => live.on('open', resolve));
    live.send(JSON.stringify({ type: 'commands.subscribe', data: { ids: [id] } }));
    await waitFor(() => received.some((m) => m.type === 'live.error'), 3000, 'refusal');
    expect(received.find((m) => m.type === 'live.error')!.data.code).toBe('forbidden');

    agent.send({ type: 'exec.output', data: { command_id: id, stream: 'stdout', seq: 0, data: 'root:secret-hash\n' } });
    agent.send({ type: 'exec.result', data: { command_id: id, exit_code: 0, signal: null, duration_ms: 3 } });
    await waitFor(async () => (await getCommand(id)).status === 'succeeded', 3000, 'result');
    const seen = (await server.app.inject({ url: `/api/v1/commands/${id}`, headers: { cookie } })).json().command;
    expect(seen).toMatchObject({ id, status: 'succeeded', exit_code: 0, stdout: '', stderr: '' });
    expect((await getCommand(id)).stdout).toBe('root:secret-hash\n');
    expect(received.some((m) => m.type === 'command.output')).toBe(false);
    expect(JSON.stringify(received)).not.toContain('secret-hash');
    expect((await server.app.inject({ url: '/api/v1/server/stats', headers: { cookie } })).statusCode).toBe(403);
    live.close();
    agent.close();
  });
});
