// Tunnels through the real agent (a Python subprocess) and a real server on loopback: the server
// opens TCP connections from the node and exchanges bytes with the target.
import crypto from 'node:crypto';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAgent, stopAll, tempDir, writeAgentConfig, type Proc } from '../../../e2e/support/processes.js';
import { TunnelError } from '../../src/services/tunnel-service.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

let server: TestServer;
let agent: Proc;
let nodeId: string;
const targets: net.Server[] = [];

beforeEach(async () => {
  server = await startTestServer();
  const { config } = await server.enroll('source');
  nodeId = config.node_id;
  agent = startAgent(writeAgentConfig(tempDir(), { ...config, server_url: server.agentUrl }));
  await waitFor(() => server.app.agentHub.isConnected(nodeId), 15_000, 'the agent online');
}, 30_000);
afterEach(async () => {
  await stopAll();
  for (const target of targets.splice(0)) target.close();
  await server.close();
});

/** A TCP server on loopback that hashes the `expect` bytes it receives, then answers with `answer` bytes and closes. */
async function target(expectBytes: number, answer: Buffer): Promise<{ port: number; received: Promise<string> }> {
  let resolve!: (hash: string) => void;
  const received = new Promise<string>((r) => { resolve = r; });
  const srv = net.createServer((socket) => {
    const hash = crypto.createHash('sha256');
    let count = 0;
    socket.on('data', (d) => {
      hash.update(d);
      count += d.length;
      if (count === expectBytes) { resolve(hash.digest('hex')); socket.end(answer); }
    });
    socket.on('error', () => undefined);
  });
  targets.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as net.AddressInfo).port, received };
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

describe('tunnels through the real agent', () => {
  it('carries megabytes both ways intact, within the credit window', async () => {
    const upload = crypto.randomBytes(3 * 1024 * 1024 + 17);
    const download = crypto.randomBytes(2 * 1024 * 1024 + 5);
    const { port, received } = await target(upload.length, download);
    const stream = await server.app.tunnels.open(nodeId, '127.0.0.1', port);
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise((r) => stream.on('end', r));
    stream.write(upload);
    expect(await received).toBe(sha256(upload));
    await ended;
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(download));
    expect((stream as { closeReason?: string }).closeReason).toBe('the target closed the connection');
    await waitFor(() => server.app.tunnels.count === 0, 10_000, 'the tunnel forgotten');
  });

  it('names a closed port, an unknown host and an offline source node', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const refused = await server.app.tunnels.open(nodeId, '127.0.0.1', closedPort).catch((e: Error) => e);
    expect(refused).toBeInstanceOf(TunnelError);
    expect((refused as Error).message).toMatch(new RegExp(`cannot connect to 127\\.0\\.0\\.1:${closedPort} from this node: .*refused`, 'i'));
    const unknown = await server.app.tunnels.open(nodeId, 'no-such-host.invalid', 22).catch((e: Error) => e);
    expect((unknown as Error).message).toContain('cannot connect to no-such-host.invalid:22 from this node');
    expect(server.app.tunnels.count).toBe(0);

    await agent.kill();
    await waitFor(() => !server.app.agentHub.isConnected(nodeId), 10_000, 'the agent gone');
    const offline = await server.app.tunnels.open(nodeId, '127.0.0.1', 22).catch((e: Error) => e);
    expect((offline as Error).message).toBe('the source node is offline');
  });

  it('ends open tunnels with a reason when the source node goes away', async () => {
    const { port } = await target(1, Buffer.from('bye'));
    const stream = await server.app.tunnels.open(nodeId, '127.0.0.1', port);
    const failed = new Promise<Error>((r) => stream.on('error', r));
    await agent.kill('SIGKILL');
    expect((await failed).message).toMatch(/the source node disconnected|connection closed|the server connection ended/);
    await waitFor(() => server.app.tunnels.count === 0, 10_000, 'the tunnel forgotten');
  });
});
