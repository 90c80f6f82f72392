import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentConfigFile } from '@dvic/protocol';
import { EventFanout } from '../../src/cluster/event-fanout.js';
import { DB_FILE } from '../../src/db/store.js';
import { bindLiveFanout } from '../../src/cluster/live-fanout.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import type { TestBus } from './bus-fixtures.js';

export interface ReplicaPair {
  a: TestServer;
  b: TestServer;
  /** The nodes enrolled before B started (both replicas know them). */
  nodes: Record<string, AgentConfigFile>;
  /** Devices made before B started, with their ping tokens. */
  devices: Record<string, { id: string; token: string }>;
  /** What either replica's fan-out refused or saw fail (a test expects none). */
  refused: string[];
  close(): Promise<void>;
}

/**
 * Two replicas of one lab on the real NATS: B starts from a copy of A's database once the nodes
 * and devices are made (what a shared PostgreSQL gives, until the server runs on it), each with its own
 * event fan-out bound to its live hub and registries. Their own writes go to their own copy, so a
 * REST answer of B shows A's change only if the fan-out brought it.
 */
export async function startReplicaPair(bus: TestBus, setup: { nodes: string[]; devices?: string[] }): Promise<ReplicaPair> {
  const a = await startTestServer();
  const nodes: ReplicaPair['nodes'] = {};
  const devices: ReplicaPair['devices'] = {};
  for (const name of setup.nodes) nodes[name] = (await a.enroll(name)).config;
  for (const name of setup.devices ?? []) {
    const made = (await a.api('POST', '/api/v1/devices', { name })).json<{ device: { id: string }; token: string }>();
    devices[name] = { id: made.device.id, token: made.token };
  }
  // B's database: a consistent copy of A's (SQLite's online backup), beside A's other files.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-replica-b-'));
  fs.cpSync(a.dataDir, dir, { recursive: true, filter: (file) => !path.basename(file).startsWith(DB_FILE) });
  await a.app.db.backup(path.join(dir, DB_FILE));
  const servers: TestServer[] = [a, await startTestServer({}, { dataDir: dir })];
  const unbind: (() => void)[] = [];
  const refused: string[] = [];
  for (const [i, server] of servers.entries()) {
    const fanout = await EventFanout.open(await bus.connect(`replica-${i}`), bus.names, { replica: `replica-${'ab'[i]}`, onRefused: (problem) => refused.push(problem) });
    const { app } = server;
    unbind.push(bindLiveFanout(app.liveHub, fanout, app.log, { nodes: app.nodeRegistry, demos: app.demoRegistry, catalog: app.demoCatalog, devices: app.deviceRegistry }));
    fanout.allListening();
    unbind.push(() => fanout.stop());
  }
  return {
    a: servers[0]!, b: servers[1]!, nodes, devices, refused,
    async close() {
      for (const off of unbind) off();
      for (const server of servers) await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
