import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { claimHubNodes } from '../../src/cluster/hub-claims.js';
import { NodeHolders } from '../../src/cluster/node-holders.js';
import { connectAgent } from '../support/simulated-agent.mjs';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';
import { busPerTest, natsAvailable } from './bus-fixtures.js';

// A real server (its agent hub) and real agent connections, the registry on the real NATS:
// what another replica reads in the bucket follows the agents connected to this one.
describe.skipIf(!(await natsAvailable()))('claims follow the agent hub', () => {
  const bus = busPerTest();
  let server: TestServer;
  let holders: NodeHolders;
  let other: NodeHolders;

  beforeEach(async () => {
    server = await startTestServer();
    holders = await NodeHolders.open(await bus.connect('replica-a'), bus.names, { replica: 'replica-a', leaseMs: 30_000 });
    other = await NodeHolders.open(await bus.connect('replica-b'), bus.names, { replica: 'replica-b', leaseMs: 30_000 });
    const unbind = claimHubNodes(server.app.agentHub, holders, server.app.log);
    bus.onCleanUp(() => { unbind(); holders.close(); other.close(); });
  });
  afterEach(async () => { await server.close(); });

  const heldBy = async (nodeId: string) => (await other.holder(nodeId))?.replica ?? null;

  it('claims a node when its agent authenticates, keeps it across a replaced connection, releases it when the agent leaves', async () => {
    const { config } = await server.enroll('pi-cluster');
    const nodeId = config.node_id;
    expect(await heldBy(nodeId)).toBeNull();

    const first = await connectAgent({ url: server.agentUrl, nodeId, privateKeyPem: config.private_key });
    await waitFor(async () => (await heldBy(nodeId)) === 'replica-a', 10_000, 'the claim');

    const replacedAt = Date.now();
    const second = await connectAgent({ url: server.agentUrl, nodeId, privateKeyPem: config.private_key });
    expect((await first.closed).code).toBe(4009);
    // The release of the replaced connection went first: the claim of the new one is what stays.
    const claim = await waitFor(async () => {
      const current = await other.holder(nodeId);
      return current && current.claimed_at >= replacedAt ? current : null;
    }, 10_000, 'the new claim');
    expect(claim.replica).toBe('replica-a');
    expect(holders.holds(nodeId)).toBe(true);

    second.close();
    await waitFor(async () => (await heldBy(nodeId)) === null, 10_000, 'the release');
    expect(holders.holds(nodeId)).toBe(false);
  });
});
