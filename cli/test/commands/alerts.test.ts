// `dvic alerts`, run in-process against a real server on loopback; a simulated agent makes a demo crash.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '@dvic/protocol';
import { connectAgent, type SimulatedAgent } from '../../../server/test/support/simulated-agent.mjs';
import { startTestServer, waitFor, type TestServer } from '../../../server/test/support/test-server.js';
import { parseDuration } from '../../src/commands/alerts.js';
import { startDvic } from '../support/run-cli.js';

let server: TestServer;
let env: NodeJS.ProcessEnv;
let agent: SimulatedAgent;

beforeAll(async () => {
  server = await startTestServer();
  env = { DVIC_URL: server.baseUrl, DVIC_TOKEN: (await server.api('POST', '/api/v1/tokens', { name: 'cli' })).json().token };
  const { config } = await server.enroll('pi-cli');
  agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
});
afterAll(async () => {
  agent?.close();
  await server.close();
});

const dvic = (...args: string[]) => startDvic(args, env).done;
const demo = (alive: boolean) => agent.send({ type: 'demo.state', data: { full: false, demos: [{ token: 'tok-cli-kiosk-000000', demo: 'kiosk', pid: 42, alive }] } });

describe('dvic alerts', () => {
  it('lists firing alerts, acknowledges one by the start of its id, mutes a node and ends the mute', async () => {
    expect((await dvic('alerts')).stdout).toBe('No alert firing.\n');
    demo(true);
    await new Promise((r) => setTimeout(r, 100));
    demo(false);
    const alert = await waitFor(async () => (await server.api('GET', '/api/v1/alerts?state=firing')).json<{ alerts: Alert[] }>().alerts[0]);
    const list = await dvic('alerts');
    expect(list.stdout).toMatch(/^ID\s+SEVERITY\s+STATE\s+SUMMARY\s+SINCE\s+FOR\s+NOTE\n/);
    expect(list.stdout).toMatch(new RegExp(`${alert.id.slice(0, 8)}\\s+critical\\s+firing\\s+kiosk crashed on pi-cli`));
    expect((await dvic('alerts', 'ack', alert.id.slice(0, 6))).stdout).toBe('Acknowledged: kiosk crashed on pi-cli\n');
    expect((await dvic('alerts')).stdout).toMatch(/acked by admin/);
    const json = JSON.parse((await dvic('alerts', '--all', '--json')).stdout) as Alert[];
    expect(json.map((a) => a.id)).toContain(alert.id);

    const muted = await dvic('alerts', 'mute', '--node', 'pi-cli', '--for', '2h', '--reason', 'moving the kiosk');
    expect(muted.code, muted.stderr).toBe(0);
    expect(muted.stdout).toMatch(/^Muted pi-cli until \d{4}-/);
    const mutes = await dvic('alerts', 'mutes', '--json');
    const [m] = JSON.parse(mutes.stdout) as { id: string; reason: string; ends_at: number; starts_at: number }[];
    expect(m).toMatchObject({ reason: 'moving the kiosk' });
    expect(m!.ends_at - m!.starts_at).toBe(2 * 3600 * 1000);
    expect((await dvic('alerts', 'mute', alert.id.slice(0, 8), '--for', '30m')).stdout).toMatch(/^Muted kiosk until/);
    expect((await dvic('alerts', 'unmute', m!.id)).stdout).toBe('Mute ended\n');
    expect(JSON.parse((await dvic('alerts', 'mutes', '--json')).stdout)).toHaveLength(1);
    // A node by name, for an hour by default.
    expect((await dvic('alerts', 'mute', 'pi-cli')).stdout).toMatch(/^Muted pi-cli until/);
    const byName = (JSON.parse((await dvic('alerts', 'mutes', '--json')).stdout) as { node_id: string | null; ends_at: number; starts_at: number }[]).find((x) => x.node_id !== null && x.ends_at - x.starts_at === 3600_000);
    expect(byName).toBeDefined();
  });

  it('says what is wrong: unknown alert (1), bad duration or action (2)', async () => {
    const unknown = await dvic('alerts', 'ack', 'ffffffff');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no alert "ffffffff"/);
    expect((await dvic('alerts', 'mute', '--node', 'pi-cli', '--for', 'soon')).code).toBe(2);
    expect((await dvic('alerts', 'mute', '--for', '1h')).code).toBe(2);
    const unknownNode = await dvic('alerts', 'mute', 'no-such-node');
    expect(unknownNode.code).toBe(1);
    expect(unknownNode.stderr).toMatch(/no node "no-such-node"/);
    expect((await dvic('alerts', 'fly')).code).toBe(2);
    expect(parseDuration('90s')).toBe(90);
    expect(parseDuration('1d')).toBe(86_400);
    expect(() => parseDuration('0m')).toThrow();
  });
});
