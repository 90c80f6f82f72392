import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors.js';
import { connectAgent } from '../support/simulated-agent.mjs';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

let server: TestServer;
beforeEach(async () => { server = await startTestServer({ DVIC_EXEC_MAX_TIMEOUT_S: '100' }); });
afterEach(async () => { await server.close(); });

const by = { userId: 1, username: 'admin', ip: '127.0.0.1' };

async function onlineAgent(name: string, labels?: Record<string, string>) {
  const { config } = await server.enroll(name, labels);
  const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['hardware', 'exec'] });
  return { agent, nodeId: config.node_id as string };
}

async function failure(fn: () => Promise<unknown>): Promise<[number, string]> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ApiError) return [err.statusCode, err.code];
    throw err;
  }
  return [0, 'no error'];
}

describe('command service', () => {
  it('refuses what cannot run: both or neither of command and argv, a timeout over the cap, an offline node, no target', async () => {
    const { commands } = server.app;
    const { nodeId } = await onlineAgent('pi');
    await server.enroll('asleep');
    expect(await failure(() => commands.runOn(nodeId, { command: 'id', argv: ['id'] }, by))).toEqual([400, 'bad_request']);
    expect(await failure(() => commands.runOn(nodeId, {}, by))).toEqual([400, 'bad_request']);
    expect(await failure(() => commands.runOn(nodeId, { command: 'id', timeout_s: 101 }, by))).toEqual([400, 'bad_request']);
    expect(await failure(() => commands.runOn('asleep', { command: 'id' }, by))).toEqual([409, 'node_offline']);
    expect(await failure(() => commands.runOn('nowhere', { command: 'id' }, by))).toEqual([404, 'not_found']);
    expect(await failure(() => commands.fanOut({ label: 'room=none' }, { command: 'id' }, by))).toEqual([400, 'bad_request']);
  });

  it('resolves fan-out targets by name, id prefix, label and all online, each node once', async () => {
    const a = await onlineAgent('a', { room: 'hall' });
    const b = await onlineAgent('b', { room: 'hall' });
    const c = await onlineAgent('c', { room: 'lab' });
    const { commands } = server.app;
    expect(commands.resolveTargets({ nodes: ['a', b.nodeId.slice(0, 8)], label: 'room=hall' }).sort()).toEqual([a.nodeId, b.nodeId].sort());
    expect(commands.resolveTargets({ all: true }).sort()).toEqual([a.nodeId, b.nodeId, c.nodeId].sort());
  });

  it('sends nothing and keeps nothing for a command whose transaction rolled back', async () => {
    const { agent, nodeId } = await onlineAgent('pi');
    const { commands, sql } = server.app;
    await expect(sql.transaction(async () => {
      await commands.runOn(nodeId, { command: 'rm -rf /tmp/x' }, by);
      throw new Error('the audit entry could not be written');
    })).rejects.toThrow('the audit entry could not be written');
    const kept = await sql.transaction(() => commands.runOn(nodeId, { command: 'id' }, by));
    const request = await agent.next((m: { type: string }) => m.type === 'exec.request');
    expect(request.data).toMatchObject({ command_id: kept.id, command: 'id' });
    expect(agent.messages.filter((m: { type: string }) => m.type === 'exec.request')).toEqual([]);
    expect((await commands.search({ limit: 10 })).commands.map((c) => c.command)).toEqual(['id']);
    agent.close();
  });

  it('does not send a command larger than the frames its agent accepts, and says why it did not run', async () => {
    const { config } = await server.enroll('small-frames');
    const agent = await connectAgent({
      url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['hardware', 'exec'], hello: { max_frame_bytes: 65536 },
    });
    const { commands } = server.app;
    const { id } = await commands.runOn('small-frames', { command: 'cat', stdin: 'x'.repeat(100_000) }, by);
    expect(await commands.get(id)).toMatchObject({ status: 'error', error: expect.stringMatching(/larger than its agent accepts/) });
    await commands.runOn('small-frames', { command: 'id' }, by);
    expect((await agent.nextOf('exec.request')).data.command).toBe('id');
    agent.close();
  });

  it('keeps output up to the cap, marks it truncated, and ends the command from its result', async () => {
    const { agent, nodeId } = await onlineAgent('pi');
    const { commands } = server.app;
    const { id } = await commands.runOn(nodeId, { argv: ['yes'] }, by);
    await agent.next((m: { type: string }) => m.type === 'exec.request');
    const chunk = 'y'.repeat(400_000);
    for (let seq = 0; seq < 3; seq++) agent.send({ type: 'exec.output', data: { command_id: id, stream: 'stdout', seq, data: chunk } });
    agent.send({ type: 'exec.result', data: { command_id: id, exit_code: null, signal: 'SIGPIPE', duration_ms: 10 } });
    const done = await waitFor(async () => { const c = (await commands.get(id))!; return c.status !== 'running' ? c : null; }, 3000, 'result');
    expect(done).toMatchObject({ status: 'failed', signal: 'SIGPIPE', truncated: true });
    expect(done?.stdout.length).toBe(1024 * 1024);
    agent.close();
  });
  it('shows the latest state of a command while an earlier write of it is still being stored', async () => {
    const { agent, nodeId } = await onlineAgent('pi');
    const { commands } = server.app;
    // The first write of the command reaches the database, then is held (the next write of it
    // waits behind); the second is held before it reaches the database.
    const repository = Reflect.get(commands, 'repository') as { update: (record: unknown) => Promise<void> };
    const update = repository.update.bind(repository);
    const held: Array<() => void> = [];
    const hold = () => new Promise<void>((resolve) => held.push(resolve));
    let writes = 0;
    repository.update = async (record) => {
      if (++writes === 1) {
        await update(record);
        await hold();
      } else {
        await hold();
        await update(record);
      }
    };
    const { id } = await commands.runOn(nodeId, { command: 'id' }, by);
    await agent.next((m: { type: string }) => m.type === 'exec.request');
    await waitFor(() => held.length === 1 || null, 3000, 'the running state written');
    agent.send({ type: 'exec.result', data: { command_id: id, exit_code: 0, signal: null, duration_ms: 5 } });
    await waitFor(async () => ((await commands.get(id))!.status === 'succeeded') || null, 3000, 'result');
    held.shift()!();
    await waitFor(() => held.length === 1 || null, 3000, 'the final state written');
    expect((await commands.get(id))!.status).toBe('succeeded');
    held.shift()!();
    agent.close();
  });
});
