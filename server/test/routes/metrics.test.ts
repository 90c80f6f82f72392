import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { METRICS_FILE } from '../../src/metrics/sqlite-metric-store.js';
import { postgresReachable, testDatabase } from '../support/postgres.js';
import { connectAgent, type SimulatedAgent } from '../support/simulated-agent.mjs';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

let server: TestServer;
const agents: SimulatedAgent[] = [];
/** Removed after the server closed (a database it wrote to). */
const afterServer: (() => Promise<unknown>)[] = [];
beforeEach(async () => { server = await startTestServer(); });
afterEach(async () => {
  for (const a of agents.splice(0)) a.close();
  await server.close();
  for (const remove of afterServer.splice(0)) await remove();
});

async function onlineNode(name: string, labels?: Record<string, string>) {
  const { config } = await server.enroll(name, labels);
  const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
  agents.push(agent);
  return { agent, id: config.node_id };
}

type Answer = { series: { name: string; node?: string; points: [number, number][] }[] };
const get = async (url: string) => server.api('GET', url);

describe('GET /api/v1/nodes/{id}/metrics', () => {
  it('answers the samples an agent sent, by their path in the hardware state, and keeps them across a restart', async () => {
    const { agent, id } = await onlineNode('pi-1');
    const before = Date.now();
    for (const [i, pct] of [10, 20, 30].entries()) {
      agent.sendHardware({ cpu: { total_pct: pct, per_core_pct: [pct, pct] }, temperatures: [{ sensor: 'thermal_zone0', source: 'thermal', celsius: 40 + i }] });
      await waitFor(async () => (await get(`/api/v1/nodes/${id}/metrics?series=cpu.total_pct&from=${before}`)).json<Answer>().series[0]?.points.length === i + 1, 5000, `sample ${i}`);
    }
    const url = `/api/v1/nodes/pi-1/metrics?series=cpu.total_pct,temperatures.thermal_zone0.celsius,filesystems./.used_bytes,network.eth0.rx_bytes_per_s,memory.used_bytes&from=${before - 1}&to=${Date.now() + 1}`;
    const answer = (await get(url)).json<Answer>();
    expect(answer.series.map((s) => s.name)).toEqual(['cpu.total_pct', 'filesystems./.used_bytes', 'memory.used_bytes', 'network.eth0.rx_bytes_per_s', 'temperatures.thermal_zone0.celsius']);
    expect(answer.series[0]!.points.map(([, v]) => v)).toEqual([10, 20, 30]);
    expect(answer.series[4]!.points.map(([, v]) => v)).toEqual([40, 41, 42]);
    expect(answer.series[1]!.points[0]![1]).toBe(4e10);
    for (const [ts] of answer.series[0]!.points) expect(ts).toBeGreaterThanOrEqual(before);
    agent.close();
    agents.splice(0);
    await server.restart();
    const again = (await get(url)).json<Answer>();
    expect(again).toEqual(answer);
  });

  it('matches a prefix with * and answers every series without a name', async () => {
    const { agent, id } = await onlineNode('pi-2');
    agent.sendHardware({ cpu: { total_pct: 5, per_core_pct: [1, 2, 3] } });
    await waitFor(async () => (await get(`/api/v1/nodes/${id}/metrics`)).json<Answer>().series.length > 0);
    const cores = (await get(`/api/v1/nodes/${id}/metrics?series=cpu.per_core_pct.*`)).json<Answer>();
    expect(cores.series.map((s) => [s.name, s.points[0]![1]])).toEqual([['cpu.per_core_pct.0', 1], ['cpu.per_core_pct.1', 2], ['cpu.per_core_pct.2', 3]]);
    const all = (await get(`/api/v1/nodes/${id}/metrics`)).json<Answer>().series.map((s) => s.name);
    expect(all).toEqual(expect.arrayContaining(['load.load1', 'memory.available_bytes', 'memory.swap_used_bytes', 'processes', 'filesystems./.used_pct', 'network.eth0.tx_bytes_per_s']));
  });

  it('refuses a bad range or step with a clear 400, and an unknown node with 404', async () => {
    await onlineNode('pi-3');
    const bad = [
      ['from=2000&to=1000', /from .* must be before to/],
      ['from=yesterday', /from: "yesterday" is not a time/],
      ['step=0', /step/],
      ['step=abc', /step/],
      ['color=red', /must NOT have additional properties|color/],
    ] as const;
    for (const [query, message] of bad) {
      const res = await get(`/api/v1/nodes/pi-3/metrics?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error.message).toMatch(message);
    }
    expect((await get('/api/v1/nodes/nope/metrics')).statusCode).toBe(404);
    expect((await server.app.inject({ method: 'GET', url: '/api/v1/nodes/pi-3/metrics' })).statusCode).toBe(401);
  });
});

// Under CI=true a PostgreSQL that does not answer fails (postgresReachable throws).
describe.skipIf(!(await postgresReachable()))('metric history in PostgreSQL (DVIC_DATABASE_URL)', () => {
  it('keeps what agents send in the database, not in a SQLite file, and answers it after a restart', async () => {
    const database = await testDatabase({ migrated: false });
    await server.close();
    server = await startTestServer({ DVIC_DATABASE_URL: database.url });
    afterServer.push(database.drop);
    const { agent, id } = await onlineNode('pg-1');
    const before = Date.now();
    for (const [i, pct] of [11, 22, 33].entries()) {
      agent.sendHardware({ cpu: { total_pct: pct, per_core_pct: [pct] } });
      await waitFor(async () => (await get(`/api/v1/nodes/${id}/metrics?series=cpu.total_pct&from=${before}`)).json<Answer>().series[0]?.points.length === i + 1, 5000, `sample ${i}`);
    }
    const url = `/api/v1/nodes/${id}/metrics?series=cpu.*&from=${before - 1}&to=${Date.now() + 1}`;
    const answer = (await get(url)).json<Answer>();
    expect(answer.series.map((s) => [s.name, s.points.map(([, v]) => v)])).toEqual([['cpu.per_core_pct.0', [11, 22, 33]], ['cpu.total_pct', [11, 22, 33]]]);
    agent.close();
    agents.splice(0);
    await server.restart();
    expect((await get(url)).json<Answer>()).toEqual(answer);
    expect(fs.existsSync(path.join(server.dataDir, METRICS_FILE))).toBe(false);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>('SELECT name FROM metric_series WHERE source = $1 ORDER BY name', [`node:${id}`]);
      expect(rows.map((r) => r.name)).toContain('cpu.total_pct');
    } finally {
      await client.end();
    }
  });
});

describe('GET /api/v1/metrics/query', () => {
  it('answers one series across the nodes of a label (compare view), each series with its node', async () => {
    const a = await onlineNode('room-a', { room: 'hall' });
    const b = await onlineNode('room-b', { room: 'hall' });
    const c = await onlineNode('elsewhere', { room: 'lab' });
    a.agent.sendHardware({ temperatures: [{ sensor: 'thermal_zone0', source: 'thermal', celsius: 50 }] });
    b.agent.sendHardware({ temperatures: [{ sensor: 'thermal_zone0', source: 'thermal', celsius: 60 }] });
    c.agent.sendHardware({ temperatures: [{ sensor: 'thermal_zone0', source: 'thermal', celsius: 70 }] });
    const url = '/api/v1/metrics/query?series=temperatures.thermal_zone0.celsius&label=room%3Dhall';
    const answer = await waitFor(async () => {
      const r = (await get(url)).json<Answer>();
      return r.series.length === 2 && r.series.every((s) => s.points.length > 0) ? r : null;
    });
    expect(answer.series.map((s) => [s.node, s.points[0]![1]]).sort()).toEqual([[a.id, 50], [b.id, 60]].sort());
    const named = (await get(`/api/v1/metrics/query?series=temperatures.thermal_zone0.celsius&nodes=room-a,elsewhere`)).json<Answer>();
    expect(named.series.map((s) => s.node).sort()).toEqual([a.id, c.id].sort());
  });
});
