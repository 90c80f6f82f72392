import crypto from 'node:crypto';
import fs from 'node:fs';
import { connect } from 'nats';
import { describe, expect, it } from 'vitest';
import { ErrorCode, type ReplicaRequest } from '@dvic/protocol';
import { NodeHolders } from '../../src/cluster/node-holders.js';
import { ReplicaRouter, type NodeRequestHandler } from '../../src/cluster/replica-router.js';
import { ApiError } from '../../src/errors.js';
import { waitFor } from '../support/test-server.js';
import { clusterNames } from '../../src/cluster/cluster-names.js';
import { busPerTest, NATS_SERVER, natsAvailable, privateNats } from './bus-fixtures.js';

// Two replicas on the real NATS: a request made on B for a node whose agent is on A runs on A.
let slowRunning = 0;

/** What the holding replica does with a request: here, it says who ran it (the hub would ask the agent). */
const answeringAs = (replica: string): NodeRequestHandler => async (request: ReplicaRequest) => {
  if (request.kind === 'fail') throw new ApiError(422, ErrorCode.badRequest, `refused on ${replica}`);
  if (request.kind === 'crash') throw new TypeError('a bug');
  if (request.kind === 'slow') {
    slowRunning++;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    slowRunning--;
  }
  if (request.kind === 'huge') return { output: 'x'.repeat(Number(request.body.bytes)) };
  return { ran_on: replica, node_id: request.node_id, echo: request.body };
};

describe.skipIf(!(await natsAvailable()))('request routing to the holding replica', () => {
  const bus = busPerTest();

  async function replica(name: string, timeoutMs = 2000, maxInFlight?: number) {
    const nc = await bus.connect(name);
    const holders = await NodeHolders.open(nc, bus.names, { replica: name, leaseMs: 30_000 });
    const router = new ReplicaRouter(nc, bus.names, holders, answeringAs(name), { replica: name, timeoutMs, maxInFlight });
    router.start();
    bus.onCleanUp(() => holders.close());
    await nc.flush(); // the subscription is on the server before anyone routes to it
    return { nc, holders, router };
  }

  it('runs a request on the replica that holds the node, whichever replica it was made on', async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const node = crypto.randomUUID();
    await a.holders.claim(node);
    expect(await b.router.request(node, 'exec', { command: 'uptime' })).toEqual({ ran_on: 'replica-a', node_id: node, echo: { command: 'uptime' } });
    expect(await a.router.request(node, 'exec', { command: 'id' })).toMatchObject({ ran_on: 'replica-a' });

    await b.holders.claim(node); // the agent moved to B
    expect(await a.router.request(node, 'exec', {})).toMatchObject({ ran_on: 'replica-b' });
  });

  it('answers node_offline when no replica holds the node, or when its agent left the holder meanwhile', async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const node = crypto.randomUUID();
    await expect(b.router.request(node, 'exec', {})).rejects.toMatchObject({ statusCode: 409, code: 'node_offline', message: `node ${node} is offline: no replica holds its agent` });

    // A's claim is still in the bucket, but A no longer has the agent (it left a moment ago).
    const kv = await a.nc.jetstream().views.kv(bus.names.holdersBucket);
    await kv.put(node, new TextEncoder().encode(JSON.stringify({ replica: 'replica-a', claimed_at: Date.now() })));
    await expect(b.router.request(node, 'exec', {})).rejects.toMatchObject({ code: 'node_offline', message: expect.stringContaining('left replica replica-a') });
  });

  it("carries the holder's error code, message and status back; a bug there is an internal_error, not a hang", async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const node = crypto.randomUUID();
    await a.holders.claim(node);
    await expect(b.router.request(node, 'fail', {})).rejects.toMatchObject({ statusCode: 422, code: 'bad_request', message: 'refused on replica-a' });
    await expect(b.router.request(node, 'crash', {})).rejects.toMatchObject({ statusCode: 500, code: 'internal_error', message: 'a bug' });
  });

  it('answers replica_unreachable when the holder is gone before its lease ran out, or does not answer in time', async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b', 500);
    const node = crypto.randomUUID();
    await a.holders.claim(node);
    await expect(b.router.request(node, 'slow', {})).rejects.toMatchObject({ statusCode: 503, code: 'replica_unreachable', message: expect.stringContaining('did not answer within 500 ms') });

    await a.router.stop(); // A dies: its claim stays until the lease expires
    await a.nc.close();
    await expect(b.router.request(node, 'exec', {})).rejects.toMatchObject({ statusCode: 503, code: 'replica_unreachable', message: expect.stringContaining('replica replica-a holds node') });
  });

  it('answers a malformed request on its subject with an error and keeps serving', async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const node = crypto.randomUUID();
    await a.holders.claim(node);
    const subject = bus.names.requestSubject('replica-a');
    const decode = (data: Uint8Array) => JSON.parse(new TextDecoder().decode(data)) as { ok: boolean; error?: { code: string } };
    for (const [payload, code] of [['{"node_id":', 'invalid_json'], [JSON.stringify({ node_id: node, kind: 'exec' }), 'invalid_message'],
      [JSON.stringify({ node_id: '>', kind: 'exec', body: {} }), 'invalid_message'], ['\u00ff\u00fe', 'invalid_json']] as const) {
      const answer = await b.nc.request(subject, new TextEncoder().encode(payload), { timeout: 2000 });
      expect(decode(answer.data)).toMatchObject({ ok: false, error: { code } });
    }
    const binary = await b.nc.request(subject, new Uint8Array([0xff, 0xfe, 0x00]), { timeout: 2000 });
    expect(decode(binary.data)).toMatchObject({ ok: false, error: { code: 'invalid_json' } });
    expect(await b.router.request(node, 'exec', {})).toMatchObject({ ran_on: 'replica-a' });
  });

  it('refuses a request or an answer over the bus limit with payload_too_large', async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const node = crypto.randomUUID();
    await a.holders.claim(node);
    const limit = b.nc.info?.max_payload ?? 0;
    expect(limit).toBeGreaterThan(0);
    await expect(b.router.request(node, 'exec', { big: 'x'.repeat(limit + 1) })).rejects.toMatchObject({ statusCode: 413, code: 'payload_too_large' });
    await expect(b.router.request(node, 'huge', { bytes: limit + 1 })).rejects.toMatchObject({ statusCode: 413, code: 'payload_too_large', message: expect.stringContaining('answer') });
    expect(await b.router.request(node, 'exec', {})).toMatchObject({ ran_on: 'replica-a' });
  });

  it('answers overloaded beyond its requests in flight, and serves again once they end', async () => {
    const a = await replica('replica-a', 5000, 2);
    const b = await replica('replica-b', 5000);
    const node = crypto.randomUUID();
    await a.holders.claim(node);
    const slow = [b.router.request(node, 'slow', {}), b.router.request(node, 'slow', {})];
    await waitFor(() => slowRunning === 2, 5000, 'both slow requests running on A');
    await expect(b.router.request(node, 'exec', {})).rejects.toMatchObject({ statusCode: 503, code: 'overloaded' });
    await Promise.all(slow);
    expect(await b.router.request(node, 'exec', {})).toMatchObject({ ran_on: 'replica-a' });
  });

  // A nats-server of its own: killing the machine's would break other tests.
  it.skipIf(!fs.existsSync(NATS_SERVER) && process.env.CI !== 'true')('answers replica_unreachable while the bus itself is away', async () => {
    const nats = await privateNats();
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const names = clusterNames('away');
    const holders = await NodeHolders.open(nc, names, { replica: 'replica-b', leaseMs: 1500 });
    const router = new ReplicaRouter(nc, names, holders, answeringAs('replica-b'), { replica: 'replica-b', timeoutMs: 500 });
    try {
      await nats.kill();
      await expect(router.request(crypto.randomUUID(), 'exec', {})).rejects.toMatchObject({
        statusCode: 503, code: 'replica_unreachable', message: expect.stringContaining('the bus did not answer'),
      });
    } finally {
      holders.close();
      await nc.close();
      await nats.stop();
    }
  });
});
