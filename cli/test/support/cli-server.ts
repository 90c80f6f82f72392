// An in-process server (buildApp on 127.0.0.1:0) with an API token for the CLI, and simulated agents.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { connectAgent, type SimulatedAgent } from '../../../server/test/support/simulated-agent.mjs';
import { startTestServer, type TestServer } from '../../../server/test/support/test-server.js';

export interface CliServer {
  server: TestServer;
  /** The environment of a user signed in with an API token (no config file). */
  env: NodeJS.ProcessEnv;
  /** Enrolls a node and connects a simulated agent for it. */
  agent(name: string, labels?: Record<string, string>, capabilities?: string[]): Promise<{ agent: SimulatedAgent; nodeId: string; reconnect(): Promise<SimulatedAgent> }>;
  close(): Promise<void>;
}

export function tempHome(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-cli-home-'));
}

export async function startCliServer(env: Record<string, string> = {}): Promise<CliServer> {
  const server = await startTestServer(env);
  const created = await server.api('POST', '/api/v1/tokens', { name: 'cli-test' });
  const { token } = created.json() as { token: string };
  const home = tempHome();
  const agents: SimulatedAgent[] = [];
  return {
    server,
    env: { HOME: home, DVIC_URL: server.baseUrl, DVIC_TOKEN: token, NO_COLOR: '1' },
    async agent(name, labels, capabilities = ['hardware', 'exec', 'terminal']) {
      const { config } = await server.enroll(name, labels);
      const connect = async () => {
        const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities });
        agents.push(agent);
        return agent;
      };
      return { agent: await connect(), nodeId: config.node_id, reconnect: connect };
    },
    async close() {
      for (const agent of agents) agent.close();
      await server.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A server for the tests of one file: started before them, closed after. */
export function serverForTests(env: Record<string, string> = {}): () => CliServer {
  let cli: CliServer | undefined;
  beforeAll(async () => { cli = await startCliServer(env); });
  afterAll(async () => { await cli?.close(); });
  return () => cli!;
}
