import { consumerOpts, DiscardPolicy, nanos, StorageType, type JetStreamClient, type JetStreamSubscription, type JsMsg, type NatsConnection } from 'nats';
import type { LiveMessage, ReplicaEvent } from '@dvic/protocol';
import type { ClusterNames } from './cluster-names.js';
import { checkReplicaId } from './cluster-names.js';
import { ClusterSchema, decodeWire, encodeWire, liveMessageProblem } from './cluster-wire.js';

export interface EventFanoutOptions {
  replica: string;
  /** Another replica's live event, for this replica's dashboards. */
  onEvent: (message: LiveMessage, origin: string) => void;
  /** Something in the stream that is not a replica's live event: reported, skipped. */
  onRefused?: (problem: string) => void;
  /** How long the stream keeps events: a replica that lost the bus for less gets what it missed. */
  maxAgeMs?: number;
  maxBytes?: number;
}

/**
 * Live events (node status, logs, commands...) published by one replica reach the dashboards of
 * every replica: each publishes what its own hub broadcasts into one JetStream stream and reads
 * the stream with an ordered consumer from the moment it starts, skipping its own events (its
 * hub already sent them). The stream is in memory and bounded in age and size.
 */
export class EventFanout {
  private constructor(
    private readonly js: JetStreamClient,
    private readonly subject: string,
    private readonly replica: string,
    private readonly subscription: JetStreamSubscription,
  ) {}

  static async open(nc: NatsConnection, names: ClusterNames, options: EventFanoutOptions): Promise<EventFanout> {
    checkReplicaId(options.replica);
    const jsm = await nc.jetstreamManager();
    const exists = await jsm.streams.info(names.eventsStream).then(() => true, () => false);
    if (!exists) {
      await jsm.streams.add({
        name: names.eventsStream, subjects: [names.eventsSubject], storage: StorageType.Memory, discard: DiscardPolicy.Old,
        max_age: nanos(options.maxAgeMs ?? 60_000), max_bytes: options.maxBytes ?? 64 * 1024 * 1024,
      });
    }
    const js = nc.jetstream();
    const consumer = consumerOpts();
    consumer.orderedConsumer();
    consumer.deliverNew();
    consumer.callback((err, msg) => { if (!err && msg) receive(msg, options); });
    const subscription = await js.subscribe(names.eventsSubject, consumer);
    return new EventFanout(js, names.eventsSubject, options.replica, subscription);
  }

  /** Stored in the stream (acknowledged by JetStream) when this resolves. */
  async publish(message: LiveMessage): Promise<void> {
    const event: ReplicaEvent = { origin: this.replica, message };
    await this.js.publish(this.subject, encodeWire(event));
  }

  stop(): void {
    this.subscription.unsubscribe();
  }
}

function receive(msg: JsMsg, options: EventFanoutOptions): void {
  let event: ReplicaEvent;
  try {
    event = decodeWire<ReplicaEvent>(ClusterSchema.replicaEvent, msg.data);
  } catch (err) {
    options.onRefused?.((err as Error).message);
    return;
  }
  if (event.origin === options.replica) return;
  const problem = liveMessageProblem(event.message);
  if (problem) {
    options.onRefused?.(`from ${event.origin}: ${problem}`);
    return;
  }
  options.onEvent(event.message as LiveMessage, event.origin);
}
