import crypto from 'node:crypto';
import fs from 'node:fs';
import type { NatsConnection } from 'nats';
import { describe, expect, it } from 'vitest';
import { NodeHolders, type NodeHoldersOptions } from '../../src/cluster/node-holders.js';
import { waitFor } from '../support/test-server.js';
import { connect } from 'nats';
import { busPerTest, NATS_SERVER, natsAvailable, privateNats } from './bus-fixtures.js';
import { clusterNames } from '../../src/cluster/cluster-names.js';

// Against the real NATS JetStream on 127.0.0.1:4222 (skipped without it, failed under CI=true).
const LEASE_MS = 2000;

describe.skipIf(!(await natsAvailable()))('node holders (NATS KV with a lease)', () => {
  const bus = busPerTest();

  async function replica(name: string, options: Partial<NodeHoldersOptions> = {}): Promise<{ nc: NatsConnection; holders: NodeHolders }> {
    const nc = await bus.connect(name);
    const holders = await NodeHolders.open(nc, bus.names, { replica: name, leaseMs: LEASE_MS, ...options });
    bus.onCleanUp(() => holders.close());
    return { nc, holders };
  }

  it('a claim is seen by every replica, kept past its lease while renewed, and gone once released', async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const node = crypto.randomUUID();
    expect(await b.holders.holder(node)).toBeNull();

    await a.holders.claim(node);
    expect(await b.holders.holder(node)).toMatchObject({ replica: 'replica-a' });
    // Two leases later the claim is still there: replica A renews it.
    const until = Date.now() + 2 * LEASE_MS;
    await waitFor(() => Date.now() > until, 3 * LEASE_MS, 'two leases');
    expect(await b.holders.holder(node)).toMatchObject({ replica: 'replica-a' });

    await a.holders.release(node);
    expect(await b.holders.holder(node)).toBeNull();
    expect(a.holders.holds(node)).toBe(false);
  });

  it("a dead replica's claims expire after the lease", async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const node = crypto.randomUUID();
    await a.holders.claim(node);
    a.holders.close(); // dies: no renewal, no release
    await a.nc.close();
    expect(await b.holders.holder(node)).toMatchObject({ replica: 'replica-a' });
    await waitFor(async () => (await b.holders.holder(node)) === null, 10 * LEASE_MS, 'the claim to expire');
  });

  it('the newest connection wins: the old holder learns it lost the node and cannot release the new claim', async () => {
    const lost: string[] = [];
    const a = await replica('replica-a', { onLost: (node) => lost.push(node) });
    const b = await replica('replica-b');
    const node = crypto.randomUUID();
    await a.holders.claim(node);
    await b.holders.claim(node); // the agent reconnected to B

    await a.holders.renew();
    expect(lost).toEqual([node]);
    expect(a.holders.holds(node)).toBe(false);
    await a.holders.release(node); // late: nothing to release any more
    expect(await a.holders.holder(node)).toMatchObject({ replica: 'replica-b' });
  });

  it('a stale release (the agent came back to the same replica meanwhile) keeps the newer claim', async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const node = crypto.randomUUID();
    await a.holders.claim(node);
    await b.holders.claim(node);
    await a.holders.release(node); // A never renewed, so it still thinks it holds the node
    expect(await b.holders.holder(node)).toMatchObject({ replica: 'replica-b' });
  });

  it('a replica paused past its lease claims its nodes again when it renews', async () => {
    const a = await replica('replica-a');
    const node = crypto.randomUUID();
    await a.holders.claim(node);
    a.holders.close(); // paused: no timer
    await waitFor(async () => (await a.holders.holder(node)) === null, 10 * LEASE_MS, 'the claim to expire');
    await a.holders.renew();
    expect(await a.holders.holder(node)).toMatchObject({ replica: 'replica-a' });
  });

  it('refuses a node id that is not a UUID (a NATS wildcard, a path) without writing anything', async () => {
    const a = await replica('replica-a');
    for (const bad of ['>', 'node.*', '../../etc/passwd', '']) {
      await expect(a.holders.claim(bad)).rejects.toMatchObject({ code: 'bad_request', message: expect.stringContaining('not a UUID') });
      await expect(a.holders.holder(bad)).rejects.toMatchObject({ code: 'bad_request' });
    }
    expect(a.holders.heldCount).toBe(0);
  });

  it('reports a claim written by something else than a replica as invalid, without crashing', async () => {
    const a = await replica('replica-a');
    const node = crypto.randomUUID();
    const kv = await (a.nc.jetstream()).views.kv(bus.names.holdersBucket);
    await kv.put(node, new TextEncoder().encode('{"replica": "x.>", "claimed_at": 1}'));
    await expect(a.holders.holder(node)).rejects.toMatchObject({ code: 'invalid_message' });
    await kv.put(node, new TextEncoder().encode('not json'));
    await expect(a.holders.holder(node)).rejects.toMatchObject({ code: 'invalid_json' });
  });

  // A nats-server of its own: killing the machine's would break other tests.
  it.skipIf(!fs.existsSync(NATS_SERVER) && process.env.CI !== 'true')('writes its claims again after NATS restarts (the in-memory bucket is lost), those made during the outage too', async () => {
    const nats = await privateNats();
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const names = clusterNames('restart');
    const holders = await NodeHolders.open(nc, names, { replica: 'replica-a', leaseMs: LEASE_MS });
    try {
      const [before, during] = [crypto.randomUUID(), crypto.randomUUID()];
      await holders.claim(before);
      await nats.kill();
      await expect(holders.claim(during)).rejects.toThrow();
      await nats.start();
      const probe = await connect({ servers: nats.url });
      const claimed = async (node: string) => {
        const kv = await probe.jetstream().views.kv(names.holdersBucket, { bindOnly: true }).catch(() => null);
        return (await kv?.get(node).catch(() => null))?.operation === 'PUT';
      };
      await waitFor(async () => (await claimed(before)) && (await claimed(during)), 10_000, 'both claims written again');
      expect(await holders.holder(during)).toMatchObject({ replica: 'replica-a' });
      await probe.close();
    } finally {
      holders.close();
      await nc.close();
      await nats.stop();
    }
  });

  it('refuses a replica id that would break a subject', async () => {
    const nc = await bus.connect('bad');
    await expect(NodeHolders.open(nc, bus.names, { replica: 'a.b', leaseMs: LEASE_MS })).rejects.toThrow(/replica id "a.b"/);
  });
});
