import type { ServerToAgentMessage, UpdateStatusMessage } from '@dvic/protocol';
import { describe, expect, it } from 'vitest';
import { connectAgent, type SimulatedAgent } from '../../../server/test/support/simulated-agent.mjs';
import { serverForTests } from '../support/cli-server.js';
import { dvic } from '../support/run-cli.js';

// Simulated agents speak the real protocol to a real in-process server (the real agent's update
// is in e2e/agent-update.test.ts); here they answer update.request the way a test says.
const server = serverForTests();
type Step = UpdateStatusMessage['data']['step'];

async function agentAt(name: string, version: string, steps: Step[] | null): Promise<SimulatedAgent> {
  const { config } = await server().server.enroll(name);
  const agent = await connectAgent({
    url: server().server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key,
    capabilities: ['hardware', 'update'], hello: { agent_version: version },
  });
  agent.ws.on('message', (data, binary) => {
    const message = JSON.parse(binary ? '{}' : data.toString()) as ServerToAgentMessage;
    if (message.type !== 'update.request' || !steps) return;
    const { update_id, version: to } = message.data;
    for (const step of steps) agent.send({ type: 'update.status', data: { update_id, version: to, step, ...(step === 'rolled_back' ? { message: 'no hello within 60 s' } : {}) } });
  });
  return agent;
}

describe('dvic update', () => {
  it('lists the shipped agent and flags the nodes behind it', async () => {
    await agentAt('upd-old', '0.0.1', null);
    const res = await dvic(['update'], server().env);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^shipped agent 0\.1\.0 \(sha256 [0-9a-f]{12}…\)/);
    expect(res.stdout).toMatch(/upd-old\s+online\s+0\.0\.1\s+behind/);
  });

  it('follows each node step by step, canary first, and exits 1 when one rolled back', async () => {
    await agentAt('upd-a', '0.0.1', ['download', 'verify', 'selftest', 'switch', 'restart', 'healthy']);
    await agentAt('upd-b', '0.0.1', ['download', 'rolled_back']);
    const res = await dvic(['update', 'upd-a', 'upd-b'], server().env);
    expect(res.code).toBe(1);
    const lines = res.stdout.split('\n');
    expect(lines.indexOf('upd-a: healthy')).toBeGreaterThan(0);
    expect(lines.indexOf('upd-a: healthy')).toBeLessThan(lines.findIndex((l) => l.startsWith('upd-b:')));
    expect(lines).toContain('upd-b: rolled_back (no hello within 60 s)');
    expect(lines).toContain('failed: 1 of 2 nodes on 0.1.0');
  });

  it('pauses, shows and cancels an update', async () => {
    await agentAt('upd-slow-1', '0.0.1', null);
    await agentAt('upd-slow-2', '0.0.1', null);
    const started = await dvic(['update', 'upd-slow-1', 'upd-slow-2', '--no-wait'], server().env);
    const id = started.stdout.trim();
    expect((await dvic(['update', '--pause', id], server().env)).stdout).toMatch(new RegExp(`update ${id}: paused`));
    const shown = await dvic(['update', '--show', id], server().env);
    expect(shown.stdout).toMatch(/upd-slow-1\s+0\.0\.1\s+running\s+sent/);
    expect(shown.stdout).toMatch(/upd-slow-2\s+0\.0\.1\s+pending/);
    expect((await dvic(['update', '--cancel', id], server().env)).stdout).toMatch(/: cancelled/);
    expect(await dvic(['update', '--resume', id], server().env)).toMatchObject({ code: 1, stderr: expect.stringMatching(/cannot resume/) });
  });

  it('refuses contradictory targets with a usage error', async () => {
    expect(await dvic(['update', 'x', '--all'], server().env)).toMatchObject({ code: 2, stderr: expect.stringMatching(/not several/) });
    expect(await dvic(['update', '--all', '--parallel', '0'], server().env)).toMatchObject({ code: 2 });
  });
});
