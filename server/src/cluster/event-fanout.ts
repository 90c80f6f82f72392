import {
  consumerOpts, DiscardPolicy, ErrorCode as NatsErrorCode, Events, nanos, NatsError, StorageType,
  type JetStreamClient, type JetStreamManager, type JetStreamSubscription, type JsMsg, type NatsConnection,
} from 'nats';
import type { LiveMessage, ReplicaEvent } from '@dvic/protocol';
import type { ClusterNames } from './cluster-names.js';
import { checkReplicaId } from './cluster-names.js';
import { ClusterSchema, decodeWire, liveMessageProblem } from './cluster-wire.js';
import { PublishQueue, type PublishQueueLimits } from './publish-queue.js';

export interface EventFanoutOptions {
  replica: string;
  /** Another replica's live event, for this replica's dashboards (more listeners: listen()). */
  onEvent?: EventListener;
  /** Something in the stream that is not a replica's live event: reported, skipped. */
  onRefused?: (problem: string) => void;
  /** How long the stream keeps events: a replica that lost the bus for less gets what it missed. */
  maxAgeMs?: number;
  maxBytes?: number;
  /** How long a publish waits for JetStream's acknowledgement (and stream requests for their answer). */
  timeoutMs?: number;
  /**
   * Read the stream from this time on (still in the stream: its max age), not only what comes
   * after open(): a replica passes when it began loading its registries, so that an event
   * published while it loaded is not lost between the load and the subscription.
   */
  since?: Date;
  /** How events are batched and how many may wait for the bus (BATCHING below). */
  batching?: Partial<PublishQueueLimits>;
}

export type EventListener = (message: LiveMessage, origin: string) => void;

const RESUBSCRIBE_RETRY_MS = 500;
/**
 * One JetStream message per event cannot keep up with 20,000 agents at 5-s intervals (2,000
 * `node.hardware` a second per replica, each awaiting its ack): events go in batches of what
 * came over 50 ms, or 512 KiB of JSON (half NATS's max_payload; a 50-ms window of hardware
 * events at that load is about 90 KiB). 20,000 events or 32 MiB may wait while NATS is away.
 */
export const BATCHING: PublishQueueLimits = { windowMs: 50, batchBytes: 512 * 1024, maxEvents: 20_000, maxBytes: 32 * 1024 * 1024 };
const encoder = new TextEncoder();

/** How long a stopping replica waits for its queued events to reach the stream. */
const FLUSH_AT_STOP_MS = 2000;
/** Events kept for listeners bound later, until allListening() (a replay from `since`). */
const MAX_HELD = 10_000;

interface Received { message: LiveMessage; origin: string }

/** Where the subscription is in the stream, to resume after the bus came back. */
interface Position { streamCreated: string; lastSeq: number }

/**
 * Live events (node status, logs, commands...) published by one replica reach the dashboards of
 * every replica: each publishes what its own hub broadcasts into one JetStream stream and reads
 * the stream with an ordered consumer from the moment it starts (or from `since`), skipping its
 * own events (its hub already sent them). Events that come before the replica bound all its
 * listeners are held for those bound later (allListening). The stream is in memory and bounded in age and size.
 *
 * After a reconnection the subscription resumes after the last event it got; when NATS restarted
 * and lost the stream, the stream is made again and read from its start (everything in it is new).
 */
export class EventFanout {
  private subscription: JetStreamSubscription | undefined;
  private position: Position = { streamCreated: '', lastSeq: 0 };
  private stopped = false;
  private recovering: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<EventListener>();
  /**
   * What came before the replica bound all its listeners (the replay from `since` while it binds
   * its hub and its alert configuration): each listener gets it when it starts listening.
   */
  private held: Received[] = [];
  private allBound = false;
  private readonly queue: PublishQueue;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly names: ClusterNames,
    private readonly options: EventFanoutOptions,
  ) {
    this.queue = new PublishQueue({ ...BATCHING, ...options.batching }, (messages) => this.send(messages));
  }

  static async open(nc: NatsConnection, names: ClusterNames, options: EventFanoutOptions): Promise<EventFanout> {
    checkReplicaId(options.replica);
    const timeout = options.timeoutMs ?? 5000;
    const fanout = new EventFanout(nc, await nc.jetstreamManager({ timeout }), nc.jetstream({ timeout }), names, options);
    fanout.position.streamCreated = await fanout.ensureStream();
    await fanout.subscribe(options.since ?? 'new');
    void fanout.recoverOnReconnect();
    return fanout;
  }

  /**
   * Queued, then sent with the others of its batch: stored in the stream (acknowledged by
   * JetStream) when this resolves; rejected with its batch (or QueueFullError when dropped from a
   * full queue). A rejection while the bus is away may still have been stored (the client sends
   * what it buffered when it reconnects). Order is kept across batches.
   */
  publish(message: LiveMessage): Promise<void> {
    return this.queue.push(message);
  }

  /** One batch as one JetStream message (a ReplicaEvent, made from the events' JSON as it is). */
  private async send(messages: string[]): Promise<void> {
    const data = encoder.encode(`{"origin":${JSON.stringify(this.options.replica)},"messages":[${messages.join(',')}]}`);
    try {
      await this.js.publish(this.names.eventsSubject, data);
    } catch (err) {
      if (!(err instanceof NatsError && err.code === NatsErrorCode.NoResponders)) throw err;
      // No stream on the subject: NATS restarted and lost it. Made again, then one more try.
      await this.ensureStream();
      await this.js.publish(this.names.eventsSubject, data);
    }
  }

  /**
   * Another listener of the other replicas' events (the live hub, the registries, the alert
   * configuration); it first gets what was held (allListening not called yet). Returns the unsubscribe.
   */
  listen(listener: EventListener): () => void {
    for (const event of this.held) deliver(event, [listener], this.options);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every listener of this replica is bound: what was held for them is let go. */
  allListening(): void {
    this.allBound = true;
    this.held = [];
  }

  /** Sends what is queued (at most FLUSH_AT_STOP_MS), then stops. */
  async stop(): Promise<void> {
    await this.queue.flush(FLUSH_AT_STOP_MS);
    this.stopped = true;
    this.queue.stop();
    this.subscription?.unsubscribe();
  }

  /** The stream, made when missing (the same config from every replica: no conflict); its creation time. */
  private async ensureStream(): Promise<string> {
    const existing = await this.jsm.streams.info(this.names.eventsStream).catch(() => null);
    if (existing) return existing.created;
    const made = await this.jsm.streams.add({
      name: this.names.eventsStream, subjects: [this.names.eventsSubject], storage: StorageType.Memory, discard: DiscardPolicy.Old,
      max_age: nanos(this.options.maxAgeMs ?? 60_000), max_bytes: this.options.maxBytes ?? 64 * 1024 * 1024,
    });
    return made.created;
  }

  private async subscribe(from: 'new' | 'all' | number | Date): Promise<void> {
    const consumer = consumerOpts();
    consumer.orderedConsumer();
    if (from === 'new') consumer.deliverNew();
    else if (from === 'all') consumer.deliverAll();
    else if (from instanceof Date) consumer.startTime(from);
    else consumer.startSequence(from);
    consumer.callback((err, msg) => {
      if (err || !msg) return;
      this.position.lastSeq = msg.info.streamSequence;
      for (const event of accepted(msg, this.options)) this.dispatch(event);
    });
    this.subscription = await this.js.subscribe(this.names.eventsSubject, consumer);
    if (this.stopped) this.subscription.unsubscribe(); // stopped while it was being made
  }

  private dispatch(event: Received): void {
    deliver(event, [this.options.onEvent, ...this.listeners], this.options);
    if (this.allBound) return;
    this.held.push(event);
    if (this.held.length < MAX_HELD) return;
    // Holding no more: a listener bound from now on gets what is held, then only what comes after it.
    this.allBound = true;
    this.options.onRefused?.(`${MAX_HELD} events came before every listener was bound: a listener bound later misses the next ones`);
  }

  private async recoverOnReconnect(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (this.stopped) return;
      if (status.type === Events.Reconnect) this.recovering = this.recovering.then(() => this.resubscribe());
    }
  }

  /** Tried again every half second until it works (JetStream may answer a moment after NATS does) or the fan-out stops. */
  private async resubscribe(): Promise<void> {
    this.subscription?.unsubscribe();
    while (!this.stopped) {
      try {
        const created = await this.ensureStream();
        const same = created === this.position.streamCreated;
        this.position = { streamCreated: created, lastSeq: same ? this.position.lastSeq : 0 };
        await this.subscribe(same ? this.position.lastSeq + 1 : 'all');
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_RETRY_MS));
      }
    }
  }
}

/** Another replica's valid live events, in order; none (reported) for anything else, and for this replica's own. */
function accepted(msg: JsMsg, options: EventFanoutOptions): Received[] {
  let event: ReplicaEvent;
  try {
    event = decodeWire<ReplicaEvent>(ClusterSchema.replicaEvent, msg.data);
  } catch (err) {
    options.onRefused?.((err as Error).message);
    return [];
  }
  if (event.origin === options.replica) return [];
  const events: Received[] = [];
  for (const message of event.messages) {
    // One bad event does not take the rest of its batch with it.
    const problem = liveMessageProblem(message);
    if (problem) options.onRefused?.(`from ${event.origin}: ${problem}`);
    else events.push({ message: message as LiveMessage, origin: event.origin });
  }
  return events;
}

function deliver({ message, origin }: Received, listeners: Array<EventListener | undefined>, options: EventFanoutOptions): void {
  for (const listener of listeners) {
    try {
      listener?.(message, origin);
    } catch (err) {
      // One listener's bug must not keep the event from the others, nor stop the subscription.
      options.onRefused?.(`a listener failed on ${message.type} from ${origin}: ${(err as Error).message}`);
    }
  }
}
