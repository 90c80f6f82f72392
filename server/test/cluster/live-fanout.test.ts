import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { LiveMessage, LabDemo, NodeView, DeviceView, ReplicaEvent } from '@dvic/protocol';
import { splitForTheBus, LOG_EVENT_BYTES } from '../../src/cluster/live-fanout.js';
import { connectAgent, sampleHardware, type SimulatedAgent } from '../support/simulated-agent.mjs';
import { LiveRecorder } from '../support/live-recorder.js';
import { waitFor, type TestServer } from '../support/test-server.js';
import { busPerFile, natsAvailable } from './bus-fixtures.js';
import { startReplicaPair, type ReplicaPair } from './replica-pair.js';

// Two replicas (two apps) on the real NATS JetStream: an agent on A, dashboards on B.

/** Two servers start (A and B): seconds each on a busy CI machine. */
const REPLICAS_TIMEOUT_MS = 120_000;
/** One run per demo (a run's token names its demo). */
const TOKENS: Record<string, string> = { kiosk: 'k3JxV9mQ2pL8sT4wZ6yB1c', radar: 'r4KyW0nR3qM9tU5xA7zC2d' };

function logBatch(id: string, demo: string, lines: string[], from = 0) {
  const records = lines.map((message, i) => ({ ts: new Date().toISOString(), level: 'INFO', message, offset: (from + i) * 100 }));
  return { type: 'demo.logs', id, data: { token: TOKENS[demo], demo, file_generation: 0, start_offset: from * 100, end_offset: (from + lines.length) * 100, records } };
}

async function liveSocket(server: TestServer, subscribe?: object): Promise<{ socket: WebSocket; recorder: LiveRecorder }> {
  const socket = new WebSocket(server.liveUrl, { headers: { cookie: server.cookie } });
  const recorder = new LiveRecorder(socket);
  await waitFor(() => recorder.first('snapshot'), 5000, 'snapshot');
  if (subscribe) {
    socket.send(JSON.stringify({ type: 'logs.subscribe', id: 'follow', data: subscribe }));
    // A follow starts when the hub has it: a live.error would say it was refused.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { socket, recorder };
}

const messagesOf = (recorder: LiveRecorder) => recorder.all('logs.records').flatMap((m) => m.data.records).map((r) => `${r.demo}:${r.message}`);

describe('splitForTheBus', () => {
  it('cuts a log batch larger than a bus message into parts, in order, nothing lost; other events go whole', () => {
    const record = (i: number) => ({
      id: i, node_id: '6f1c2a8e-3b1d-4c5e-9f7a-0b1c2d3e4f50', source: 'demo' as const, demo: 'kiosk', level: 'INFO', ts: i, message: `${i} ${'x'.repeat(1000)}`,
      fields: null, token: null, received_at: i,
    });
    const records = Array.from({ length: 1000 }, (_, i) => record(i));
    const parts = splitForTheBus({ type: 'logs.records', data: { records } } as LiveMessage);
    expect(parts.length).toBeGreaterThan(2);
    for (const part of parts) expect(Buffer.byteLength(JSON.stringify(part))).toBeLessThan(LOG_EVENT_BYTES + 2000);
    expect(parts.flatMap((p) => (p.type === 'logs.records' ? p.data.records.map((r) => r.id) : []))).toEqual(records.map((r) => r.id));
    const status: LiveMessage = { type: 'node.status', data: { node_id: record(0).node_id, status: 'online', since: 1 } };
    expect(splitForTheBus(status)).toEqual([status]);
  });
});

describe.skipIf(!(await natsAvailable()))('live fan-out between two replicas (real NATS, two apps)', () => {
  const bus = busPerFile();
  let pair: ReplicaPair;
  const agents: SimulatedAgent[] = [];
  // One pair for the file (each test has nodes of its own): starting servers is what costs.
  beforeAll(async () => {
    pair = await startReplicaPair(bus, { nodes: ['pi-hall', 'pi-lab', 'pi-door'], devices: ['esp32-door'] });
  }, REPLICAS_TIMEOUT_MS);
  afterEach(() => { for (const agent of agents.splice(0)) agent.close(); });
  afterAll(async () => { await pair?.close(); }, REPLICAS_TIMEOUT_MS);

  async function agentOn(server: TestServer, name: string): Promise<SimulatedAgent> {
    const config = pair.nodes[name]!;
    const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['hardware', 'exec'] });
    agents.push(agent);
    return agent;
  }

  /** Every event on the bus, by the replica that published it. */
  async function busTap(): Promise<Map<string, LiveMessage[]>> {
    const byOrigin = new Map<string, LiveMessage[]>();
    const nc = await bus.connect('tap');
    const sub = nc.subscribe(bus.names.eventsSubject);
    void (async () => {
      for await (const msg of sub) {
        const { origin, messages } = JSON.parse(new TextDecoder().decode(msg.data)) as ReplicaEvent;
        byOrigin.set(origin, [...(byOrigin.get(origin) ?? []), ...messages.map((message) => message as LiveMessage)]);
      }
    })();
    return byOrigin;
  }

  it("A's events reach B's dashboards once each, with B's log filters; nothing goes back out", async () => {
    const { a, b } = pair;
    const tap = await busTap();
    const everything = await liveSocket(b, {});
    const hallKiosk = await liveSocket(b, { node: 'pi-hall', demo: 'kiosk' });
    const errorsOnly = await liveSocket(b, { q: 'camera' });
    const onA = await liveSocket(a, {});

    const hall = await agentOn(a, 'pi-hall');
    const lab = await agentOn(a, 'pi-lab');
    hall.send(logBatch('h1', 'kiosk', ['hall kiosk 1', 'hall kiosk camera lost']));
    hall.send(logBatch('h2', 'radar', ['hall radar 1']));
    lab.send(logBatch('l1', 'kiosk', ['lab kiosk 1', 'lab kiosk camera ok']));
    for (const [agent, id] of [[hall, 'h1'], [hall, 'h2'], [lab, 'l1']] as const) await agent.next((m: { id?: string }) => m.id === id);

    const all = ['kiosk:hall kiosk 1', 'kiosk:hall kiosk camera lost', 'radar:hall radar 1', 'kiosk:lab kiosk 1', 'kiosk:lab kiosk camera ok'];
    await waitFor(() => messagesOf(everything.recorder).length >= 5, 10_000, 'the 5 lines on B');
    await waitFor(() => messagesOf(errorsOnly.recorder).length >= 2, 10_000, 'the camera lines on B');
    await waitFor(() => messagesOf(onA.recorder).length >= 5, 10_000, 'the 5 lines on A');
    // A later event from A: once it is on B, everything before it is too (order per publisher).
    hall.send(logBatch('h3', 'kiosk', ['hall kiosk last'], 2));
    await waitFor(() => messagesOf(hallKiosk.recorder).includes('kiosk:hall kiosk last'), 10_000, 'the last line on B');
    await waitFor(() => messagesOf(everything.recorder).length >= 6, 10_000, 'the last line for everyone on B');

    expect(messagesOf(everything.recorder).sort()).toEqual([...all, 'kiosk:hall kiosk last'].sort());
    expect(messagesOf(hallKiosk.recorder)).toEqual(['kiosk:hall kiosk 1', 'kiosk:hall kiosk camera lost', 'kiosk:hall kiosk last']);
    expect(messagesOf(errorsOnly.recorder).sort()).toEqual(['kiosk:hall kiosk camera lost', 'kiosk:lab kiosk camera ok']);
    // A's own subscriber got each line once: none came back to it from the bus.
    await waitFor(() => messagesOf(onA.recorder).length >= 6, 10_000, 'the last line on A');
    expect(messagesOf(onA.recorder).sort()).toEqual([...all, 'kiosk:hall kiosk last'].sort());

    // Node events: the two agents online, once each on B's dashboards.
    const hallId = pair.nodes['pi-hall']!.node_id;
    const online = (recorder: LiveRecorder) => recorder.all('node.status').filter((m) => m.data.node_id === hallId && m.data.status === 'online');
    expect(online(everything.recorder)).toHaveLength(1);
    expect(online(onA.recorder)).toHaveLength(1);
    // B published nothing of A's (nor anything made from applying A's events to its registries).
    expect(tap.get('replica-b') ?? []).toEqual([]);
    expect((tap.get('replica-a') ?? []).some((m) => m.type === 'logs.records')).toBe(true);
    expect(pair.refused).toEqual([]);
    for (const s of [everything, hallKiosk, errorsOnly, onA]) s.socket.close();
  }, REPLICAS_TIMEOUT_MS);

  it("a change on A shows in B's REST answers: node online and hardware, demo runs, device pings", async () => {
    const { a, b } = pair;
    const nodeId = pair.nodes['pi-door']!.node_id;
    const node = async (server: TestServer) => (await server.api('GET', `/api/v1/nodes/${nodeId}`)).json<{ node: NodeView }>().node;
    expect((await node(b)).status).toBe('offline');

    const agent = await agentOn(a, 'pi-door');
    await waitFor(async () => (await node(b)).status === 'online', 10_000, 'online on B');
    expect((await node(b)).agent_version).toBe((await node(a)).agent_version);

    agent.sendHardware(sampleHardware({ cpu: { total_pct: 87.5, per_core_pct: [80, 95] } }));
    await waitFor(async () => (await node(b)).hardware?.cpu.total_pct === 87.5, 10_000, 'the hardware on B');

    const started = new Date(Date.now() - 60_000).toISOString();
    agent.send({ type: 'demo.state', data: { full: true, demos: [{ token: 'tok001aaaaaaaaaaaaaaaa', demo: 'kiosk', pid: 101, alive: true, started_at: started }] } });
    const demos = async (server: TestServer) => (await server.api('GET', `/api/v1/demos?node=${nodeId}`)).json<{ demos: LabDemo[] }>().demos;
    await waitFor(async () => (await demos(b)).some((d) => d.name === 'kiosk' && d.state === 'running'), 10_000, 'the demo running on B');
    const [onA] = await demos(a);
    const [onB] = await demos(b);
    expect(onB).toMatchObject({ id: onA!.id, name: 'kiosk', state: 'running', runs: [{ pid: 101, alive: true }] });
    expect((await node(b)).demo_summary).toEqual({ total: 1, alive: 1 });

    agent.send({ type: 'demo.state', data: { full: true, demos: [] } });
    await waitFor(async () => (await demos(b)).some((d) => d.name === 'kiosk' && d.state !== 'running'), 10_000, 'the demo ended on B');

    const device = pair.devices['esp32-door']!;
    const deviceOn = async (server: TestServer) => (await server.api('GET', `/api/v1/devices/${device.id}`)).json<{ device: DeviceView }>().device;
    const ping = await fetch(`${a.baseUrl}/ping/${device.token}?status=ready&temp=21.5`);
    expect(ping.status).toBe(200);
    await waitFor(async () => (await deviceOn(b)).status === 'up', 10_000, 'the device up on B');
    await waitFor(async () => (await deviceOn(b)).ping_count === 1, 10_000, 'the ping counted on B');
    expect((await deviceOn(b)).last_seen).toBe((await deviceOn(a)).last_seen);

    agent.close();
    await waitFor(async () => (await node(b)).status === 'offline', 10_000, 'offline on B');
    expect(pair.refused).toEqual([]);
  }, REPLICAS_TIMEOUT_MS);

  it("an event naming a device B does not know yet is applied once B reads it: shown once on B's dashboards, not sent back to the bus", async () => {
    const { a, b } = pair;
    const tap = await busTap();
    const onB = await liveSocket(b);
    // Made on A after B loaded; A's device.updated reaches B while B's database has no row, then the row comes (a shared
    // database has it from the start, but the event may come first there too): B's memory misses it until an event reads it.
    const made = (await a.api('POST', '/api/v1/devices', { name: 'esp32-late' })).json<{ device: { id: string }; token: string }>();
    const mine = (m: LiveMessage) => 'data' in m && JSON.stringify(m.data).includes(made.device.id);
    await waitFor(() => onB.recorder.all('device.updated').some(mine), 10_000, "A's new device on B's dashboard");
    const row = a.app.db.prepare('SELECT * FROM devices WHERE id = ?').get(made.device.id) as Record<string, unknown>;
    const columns = Object.keys(row);
    b.app.db.prepare(`INSERT INTO devices (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`).run(...columns.map((c) => row[c]));

    expect((await fetch(`${a.baseUrl}/ping/${made.token}?status=ready`)).status).toBe(200);
    const statusOn = async (server: TestServer) => (await server.api('GET', `/api/v1/devices/${made.device.id}`)).json<{ device?: DeviceView }>().device?.status;
    await waitFor(async () => (await statusOn(b)) === 'up', 10_000, 'the device up on B');
    // A later event of B's own on the same socket: once it is there, anything B sent before it is too.
    const marker = (await b.api('POST', '/api/v1/devices', { name: 'esp32-marker' })).json<{ device: { id: string } }>().device.id;
    await waitFor(() => onB.recorder.all('device.updated').some((m) => m.data.device.id === marker), 10_000, 'the marker on B');

    expect(onB.recorder.all('device.updated').filter(mine)).toHaveLength(1);
    expect(onB.recorder.all('device.status').filter(mine).map((m) => m.data.status)).toEqual(['up']);
    expect((tap.get('replica-b') ?? []).filter(mine)).toEqual([]);
    expect(pair.refused).toEqual([]);
    onB.socket.close();
  }, REPLICAS_TIMEOUT_MS);
});
