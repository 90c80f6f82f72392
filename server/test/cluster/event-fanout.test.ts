import crypto from 'node:crypto';
import fs from 'node:fs';
import { connect } from 'nats';
import { describe, expect, it } from 'vitest';
import type { LiveMessage } from '@dvic/protocol';
import { clusterNames } from '../../src/cluster/cluster-names.js';
import { EventFanout } from '../../src/cluster/event-fanout.js';
import { waitFor } from '../support/test-server.js';
import { busPerTest, NATS_SERVER, natsAvailable, privateNats } from './bus-fixtures.js';

// Replicas on the real NATS JetStream: what one publishes, the dashboards of the others get.
interface Received { message: LiveMessage; origin: string }

const status = (nodeId: string, since: number): LiveMessage => ({ type: 'node.status', data: { node_id: nodeId, status: 'online', since } });

describe.skipIf(!(await natsAvailable()))('live event fan-out (JetStream stream)', () => {
  const bus = busPerTest();

  async function replica(name: string) {
    const nc = await bus.connect(name);
    const received: Received[] = [];
    const refused: string[] = [];
    const fanout = await EventFanout.open(nc, bus.names, {
      replica: name, onEvent: (message, origin) => received.push({ message, origin }), onRefused: (problem) => refused.push(problem),
    });
    bus.onCleanUp(() => fanout.stop());
    return { nc, fanout, received, refused };
  }

  it("every other replica gets each event once, in order; the publisher's own hub already had it", async () => {
    const [a, b, c] = [await replica('replica-a'), await replica('replica-b'), await replica('replica-c')];
    const node = crypto.randomUUID();
    for (let i = 0; i < 50; i++) await a.fanout.publish(status(node, i));
    for (const other of [b, c]) {
      await waitFor(() => other.received.length >= 50, 20_000, 'the 50 events');
      expect(other.received.map((r) => (r.message.data as { since: number }).since)).toEqual([...Array(50).keys()]);
      expect(new Set(other.received.map((r) => r.origin))).toEqual(new Set(['replica-a']));
    }
    // B's event reaches A after A's own 50 went by: A got none of its own.
    await b.fanout.publish(status(node, 1000));
    await waitFor(() => a.received.length > 0, 20_000, "B's event on A");
    expect(a.received).toEqual([{ message: status(node, 1000), origin: 'replica-b' }]);
    await waitFor(() => c.received.length === 51, 20_000, "B's event on C");
    expect(b.received).toHaveLength(50); // A's, not its own
  });

  it('skips and reports what is not a valid live event from a replica, and goes on', async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const node = crypto.randomUUID();
    const raw = (text: string) => a.nc.jetstream().publish(bus.names.eventsSubject, new TextEncoder().encode(text));
    await raw('{"origin": "replica-a", "message": ');
    await raw(JSON.stringify({ origin: 'replica-x', message: { type: 'node.status', data: { node_id: node, status: 'exploded', since: 1 } } }));
    await raw(JSON.stringify({ origin: 'replica-x', message: { type: 'exec.request', data: { command_id: 'c', command: 'rm -rf /' } } }));
    await raw(JSON.stringify({ origin: 'x.>', message: status(node, 1) }));
    await a.fanout.publish(status(node, 2));
    await waitFor(() => b.received.length === 1, 20_000, 'the valid event');
    expect(b.received).toEqual([{ message: status(node, 2), origin: 'replica-a' }]);
    expect(b.refused).toHaveLength(4);
    expect(b.refused[0]).toMatch(/invalid JSON/);
    expect(b.refused[1]).toMatch(/^from replica-x: node.status: \/data\/status/);
    expect(b.refused[2]).toMatch(/^from replica-x: unknown message type "exec.request"/);
    expect(b.refused[3]).toMatch(/replica-event.json: \/origin/);
  });

  it('a replica that starts later gets events from then on (its dashboards load the rest over REST)', async () => {
    const a = await replica('replica-a');
    const node = crypto.randomUUID();
    await a.fanout.publish(status(node, 1));
    const b = await replica('replica-b');
    await a.fanout.publish(status(node, 2));
    await waitFor(() => b.received.length === 1, 20_000, 'the event after B started');
    expect(b.received).toEqual([{ message: status(node, 2), origin: 'replica-a' }]);
  });

  it('a replica opened with since gets the events from that time on, also those before it opened (published while it loaded), held until its listeners are bound: each gets them', async () => {
    const a = await replica('replica-a');
    const node = crypto.randomUUID();
    await a.fanout.publish(status(node, 1));
    await new Promise((r) => setTimeout(r, 50)); // the stream's timestamps are in ms: 1 apart from `since`
    const since = new Date();
    await a.fanout.publish(status(node, 2)); // after B began loading its registries, before it opened
    const hub: Received[] = [];
    const alerts: Received[] = [];
    const b = await EventFanout.open(await bus.connect('replica-b'), bus.names, { replica: 'replica-b', since });
    bus.onCleanUp(() => b.stop());
    await new Promise((r) => setTimeout(r, 200)); // the replay arrives before anyone listens: it is held
    b.listen((message, origin) => hub.push({ message, origin }));
    await new Promise((r) => setTimeout(r, 50)); // another listener bound later (the alerts' after the leader's lease)
    b.listen((message, origin) => alerts.push({ message, origin }));
    b.release();
    await a.fanout.publish(status(node, 3));
    for (const received of [hub, alerts]) {
      await waitFor(() => received.length === 2, 10_000, 'the events since B began');
      expect(received.map((r) => (r.message.data as { since: number }).since)).toEqual([2, 3]);
    }
  });

  // A nats-server of its own: killing the machine's would break other tests.
  it.skipIf(!fs.existsSync(NATS_SERVER) && process.env.CI !== 'true')('goes on after NATS restarts and loses the in-memory stream: each later event once', async () => {
    const nats = await privateNats();
    const options = { servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 };
    const [ncA, ncB] = [await connect(options), await connect(options)];
    const received: number[] = [];
    const names = clusterNames('restart');
    const a = await EventFanout.open(ncA, names, { replica: 'replica-a', onEvent: () => undefined, timeoutMs: 2000 });
    const b = await EventFanout.open(ncB, names, { replica: 'replica-b', onEvent: (m) => received.push((m.data as { since: number }).since), timeoutMs: 2000 });
    try {
      const node = crypto.randomUUID();
      await a.publish(status(node, 1));
      await waitFor(() => received.length === 1, 10_000, 'the first event');
      await nats.kill();
      await expect(a.publish(status(node, 2))).rejects.toThrow(); // nowhere to store it: the caller knows
      await nats.start();
      // Published once the bus is back (a publish that fails is the caller's to retry).
      let next = 3;
      await waitFor(async () => {
        await a.publish(status(node, next)).then(() => next++, () => undefined);
        return received.length >= 3;
      }, 15_000, 'events after the restart');
      const later = Array.from({ length: next - 3 }, (_, i) => i + 3);
      await waitFor(() => later.every((n) => received.includes(n)), 10_000, 'every published event');
      // Event 2 was refused to its publisher; it may still be stored if the client's buffer reached a new stream.
      expect(received.filter((n) => n !== 2)).toEqual([1, ...later]);
      expect(received.filter((n) => n === 2).length).toBeLessThanOrEqual(1);
    } finally {
      a.stop();
      b.stop();
      await ncA.close();
      await ncB.close();
      await nats.stop();
    }
  });
});
