// The "agent version behind" rule when the server starts shipping a newer agent file: nodes are
// judged again without waiting for their next event. A real in-process server, a simulated agent.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '@dvic/protocol';
import { defaultAgentPath } from '../../src/local-agent/local-agent.js';
import { connectAgent } from '../support/simulated-agent.mjs';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

const SHIPPED = fs.readFileSync(defaultAgentPath(), 'utf8');
const VERSION = /^AGENT_VERSION = "([^"]+)"$/m.exec(SHIPPED)![1]!;
let dir: string;
let agentFile: string;
let server: TestServer;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-agent-release-'));
  agentFile = path.join(dir, 'dvic_agent.py');
  fs.writeFileSync(agentFile, SHIPPED);
  server = await startTestServer({ DVIC_AGENT_FILE: agentFile });
}, 60_000);
afterAll(async () => {
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a new shipped agent', () => {
  it('fires "agent version behind" for a node on the old one, without a new event from the node', async () => {
    expect((await server.api('POST', '/api/v1/alert-rules', { name: 'agent behind', kind: 'agent_version' })).statusCode).toBe(201);
    const { config } = await server.enroll('pi-current');
    const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, hello: { agent_version: VERSION } });
    const firing = async () => (await server.api('GET', '/api/v1/alerts?state=firing')).json<{ alerts: Alert[] }>().alerts.filter((a) => a.kind === 'agent_version');
    try {
      await waitFor(async () => (await server.api('GET', '/api/v1/nodes')).json<{ nodes: { name: string; status: string }[] }>().nodes.some((n) => n.name === 'pi-current' && n.status === 'online'));
      server.app.alerts.engine.checkRelease();
      expect(await firing()).toEqual([]);

      fs.writeFileSync(agentFile, SHIPPED.replace(/^AGENT_VERSION = "[^"]+"$/m, 'AGENT_VERSION = "999.0.0"'));
      const later = new Date(Date.now() + 60_000);
      fs.utimesSync(agentFile, later, later); // a new mtime even on a coarse clock
      server.app.alerts.engine.checkRelease(); // what its timer does every 30 s
      const [alert] = await waitFor(async () => { const alerts = await firing(); return alerts.length ? alerts : null; });
      expect(alert!.summary).toBe(`pi-current runs agent ${VERSION}, the server ships 999.0.0`);
    } finally {
      agent.close();
    }
  });
});
