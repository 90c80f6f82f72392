import crypto from 'node:crypto';
import fs from 'node:fs';
import type { FastifyBaseLogger } from 'fastify';
import { connect } from 'nats';
import { describe, expect, it } from 'vitest';
import type { LiveMessage } from '@dvic/protocol';
import { clusterNames } from '../../src/cluster/cluster-names.js';
import { EventFanout } from '../../src/cluster/event-fanout.js';
import { livePublisher } from '../../src/cluster/live-fanout.js';
import { QueueFullError } from '../../src/cluster/publish-queue.js';
import { sampleHardware } from '../support/simulated-agent.mjs';
import { waitFor } from '../support/test-server.js';
import { busPerTest, NATS_SERVER, natsAvailable, privateNats } from './bus-fixtures.js';

// Replicas on the real NATS JetStream: what one publishes, the dashboards of the others get.
interface Received { message: LiveMessage; origin: string }

const status = (nodeId: string, since: number): LiveMessage => ({ type: 'node.status', data: { node_id: nodeId, status: 'online', since } });
const hardware = (nodeId: string, at: number): LiveMessage => ({ type: 'node.hardware', data: { node_id: nodeId, at, hardware: sampleHardware() } });
/** What a test reads of a live event: its type, node and time. */
const brief = ({ message }: Received) => {
  const data = message.data as { node_id: string; since?: number; at?: number };
  return `${message.type} ${data.node_id} ${data.since ?? data.at}`;
};

/** A logger that keeps the warnings (what an operator would read). */
function warningLog() {
  const warnings: Array<{ message: string; count: number }> = [];
  const quiet = () => undefined;
  const log = { info: quiet, debug: quiet, error: quiet, trace: quiet, fatal: quiet, warn: (fields: { count: number }, message: string) => warnings.push({ message, count: fields.count }) };
  return { log: log as unknown as FastifyBaseLogger, warnings };
}

describe.skipIf(!(await natsAvailable()))('live event fan-out (JetStream stream)', () => {
  const bus = busPerTest();

  async function replica(name: string) {
    const nc = await bus.connect(name);
    const received: Received[] = [];
    const refused: string[] = [];
    const fanout = await EventFanout.open(nc, bus.names, {
      replica: name, onEvent: (message, origin) => received.push({ message, origin }), onRefused: (problem) => refused.push(problem),
    });
    fanout.allListening(); // onEvent is its one listener
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
    await raw('{"origin": "replica-a", "messages": [');
    await raw(JSON.stringify({ origin: 'replica-x', messages: [{ type: 'node.status', data: { node_id: node, status: 'exploded', since: 1 } }] }));
    await raw(JSON.stringify({ origin: 'replica-x', messages: [{ type: 'exec.request', data: { command_id: 'c', command: 'rm -rf /' } }] }));
    await raw(JSON.stringify({ origin: 'x.>', messages: [status(node, 1)] }));
    // One bad event of a batch: the others of the batch still arrive.
    await raw(JSON.stringify({ origin: 'replica-x', messages: [status(node, 1), { type: 'node.status', data: { node_id: node, status: 'exploded', since: 2 } }] }));
    await a.fanout.publish(status(node, 2));
    await waitFor(() => b.received.length === 2, 20_000, 'the valid events');
    expect(b.received).toEqual([{ message: status(node, 1), origin: 'replica-x' }, { message: status(node, 2), origin: 'replica-a' }]);
    expect(b.refused).toHaveLength(5);
    expect(b.refused[4]).toMatch(/^from replica-x: node.status: \/data\/status/);
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

  it('a replica opened with since gets the events from that time on, also those before it opened (published while it loaded), held for its listeners', async () => {
    const a = await replica('replica-a');
    const node = crypto.randomUUID();
    await a.fanout.publish(status(node, 1));
    await new Promise((r) => setTimeout(r, 50)); // the stream's timestamps are in ms: 1 apart from `since`
    const since = new Date();
    await a.fanout.publish(status(node, 2)); // after B began loading its registries, before it opened
    const received: Received[] = [];
    const b = await EventFanout.open(await bus.connect('replica-b'), bus.names, { replica: 'replica-b', since });
    bus.onCleanUp(() => b.stop());
    await new Promise((r) => setTimeout(r, 200)); // the replay arrives before anyone listens: it is held for the first listener
    b.listen((message, origin) => received.push({ message, origin }));
    await a.fanout.publish(status(node, 3));
    await waitFor(() => received.length === 2, 10_000, 'the events since B began');
    expect(received.map((r) => (r.message.data as { since: number }).since)).toEqual([2, 3]);
  });


  it('what came before the replica bound its listeners reaches each of them (the hub, the alert configuration), once, until all listen', async () => {
    const a = await replica('replica-a');
    const node = crypto.randomUUID();
    const since = new Date();
    await a.fanout.publish(status(node, 1)); // published while B loaded its registries
    const b = await EventFanout.open(await bus.connect('replica-b'), bus.names, { replica: 'replica-b', since });
    bus.onCleanUp(() => b.stop());
    const [hub, alerts, later] = [[], [], []] as number[][];
    const sinceOf = (into: number[]) => (message: LiveMessage) => { into.push((message.data as { since: number }).since); };
    await new Promise((r) => setTimeout(r, 200)); // the replay arrives before anyone listens
    b.listen(sinceOf(hub!));
    await a.fanout.publish(status(node, 2));
    await waitFor(() => hub!.length === 2, 10_000, 'the hub has both');
    b.listen(sinceOf(alerts!)); // bound after the hub, before the replica is done binding
    b.allListening();
    await a.fanout.publish(status(node, 3));
    // Stored in the stream is not yet delivered to B: bound before 3 reached B, `later` would get it too.
    await waitFor(() => alerts!.length === 3, 10_000, 'the alert configuration has 3');
    b.listen(sinceOf(later!)); // bound after: only what comes next
    await a.fanout.publish(status(node, 4));
    await waitFor(() => later!.length === 1 && alerts!.length === 4, 10_000, 'every listener up to date');
    expect(hub).toEqual([1, 2, 3, 4]);
    expect(alerts).toEqual([1, 2, 3, 4]);
    expect(later).toEqual([4]);
  });

  it('events published together go as one JetStream message, in order; of several hardware reports of a node only the newest', async () => {
    const [a, b] = [await replica('replica-a'), await replica('replica-b')];
    const [n1, n2] = [crypto.randomUUID(), crypto.randomUUID()];
    const before = (await (await a.nc.jetstreamManager()).streams.info(bus.names.eventsStream)).state.messages;
    const sent = [status(n1, 1), hardware(n1, 10), status(n2, 2), hardware(n2, 10), hardware(n1, 11), status(n1, 3), hardware(n1, 12), status(n2, 4)];
    await Promise.all(sent.map((message) => a.fanout.publish(message)));
    await waitFor(() => b.received.length >= 6, 20_000, 'the batch');
    expect(b.received.map(brief)).toEqual([
      `node.status ${n1} 1`, `node.status ${n2} 2`, `node.hardware ${n2} 10`, `node.status ${n1} 3`, `node.hardware ${n1} 12`, `node.status ${n2} 4`,
    ]);
    expect((await (await a.nc.jetstreamManager()).streams.info(bus.names.eventsStream)).state.messages - before).toBe(1);
    expect(b.refused).toEqual([]);
  });

  it('a burst of 20,000 events arrives in a few JetStream messages: every status in order, each node\'s newest hardware', async () => {
    const [a, b] = [await replica('replica-a'), await replica('replica-b')];
    const nodes = Array.from({ length: 100 }, () => crypto.randomUUID());
    const sent: LiveMessage[] = [];
    for (let i = 0; i < 20_000; i++) sent.push(i % 2 ? hardware(nodes[(i >> 1) % 100]!, i) : status(nodes[(i >> 1) % 100]!, i));
    const newestHardware = new Map(sent.filter((m) => m.type === 'node.hardware').map((message) => [(message.data as { node_id: string }).node_id, brief({ message, origin: '' })]));
    const jsm = await a.nc.jetstreamManager();
    const before = (await jsm.streams.info(bus.names.eventsStream)).state.messages;
    const results = await Promise.allSettled(sent.map((message) => a.fanout.publish(message)));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const statuses = sent.filter((m) => m.type === 'node.status').map((message) => brief({ message, origin: '' }));
    await waitFor(() => b.received.filter((r) => r.message.type === 'node.status').length >= statuses.length, 30_000, 'every status');
    const hardwareOn = (received: Received[], node: string) => received.filter((r) => r.message.type === 'node.hardware' && brief(r).includes(node)).map(brief);
    await waitFor(() => nodes.every((node) => hardwareOn(b.received, node).at(-1) === newestHardware.get(node)), 10_000, "each node's newest hardware");
    expect(b.received.filter((r) => r.message.type === 'node.status').map(brief)).toEqual(statuses);
    const messages = (await jsm.streams.info(bus.names.eventsStream)).state.messages - before;
    console.log(`20,000 events (10,000 hardware of 100 nodes): ${messages} JetStream messages, ${b.received.length} events delivered`);
    for (const node of nodes) expect(hardwareOn(b.received, node).at(-1)).toBe(newestHardware.get(node));
    expect(messages).toBeLessThan(100);
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

  it.skipIf(!fs.existsSync(NATS_SERVER) && process.env.CI !== 'true')('NATS away: the queue stays bounded and each failure is written once, with a count', async () => {
    const nats = await privateNats();
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const fanout = await EventFanout.open(nc, clusterNames('away'), { replica: 'replica-a', timeoutMs: 1000, batching: { maxEvents: 100 } });
    const { log, warnings } = warningLog();
    try {
      await nats.kill();
      const publish = livePublisher(fanout, log);
      const node = crypto.randomUUID();
      for (let i = 0; i < 1000; i++) publish(status(node, i));
      const results = await Promise.allSettled([fanout.publish(status(node, 1000))]);
      // The newest waits (it is among the 100 kept), then fails with its batch when the bus does not answer.
      expect(results[0]).toMatchObject({ status: 'rejected' });
      expect((results[0] as PromiseRejectedResult).reason).not.toBeInstanceOf(QueueFullError);
      // One line at once for each kind, then one per interval with how many more.
      await waitFor(() => warnings.reduce((sum, w) => sum + w.count, 0) === 1000, 15_000, 'every failure counted');
      const of = (message: RegExp) => warnings.filter((w) => message.test(w.message));
      // 1,001 published, the newest 100 kept: 901 dropped; 99 of the kept were the publisher's.
      expect(of(/dropped/).map((w) => w.count)).toEqual([1, 900]);
      expect(of(/cannot publish/).map((w) => w.count)).toEqual([1, 98]);
      expect(warnings).toHaveLength(4);
    } finally {
      fanout.stop();
      await nc.close();
      await nats.stop();
    }
  }, 30_000); // the second lines come a warning interval (5 s) after the first
});
