import type { FastifyBaseLogger } from 'fastify';
import type { LiveMessage, LogsRecordsLiveMessage } from '@dvic/protocol';
import type { LiveHub } from '../live/live-hub.js';
import type { EventFanout } from './event-fanout.js';
import { QueueFullError } from './publish-queue.js';
import { rateLimitedWarning } from './rate-limited-warning.js';
import { applyRemoteState, loadUnknown, type ReplicaState } from './remote-state.js';

/**
 * A log batch is cut into events of about this many bytes of JSON: NATS refuses a message over
 * its max_payload (1 MiB by default), and a batch of the log pipeline can be larger.
 */
export const LOG_EVENT_BYTES = 256 * 1024;

/**
 * Every lab event this replica's live hub sends its subscribers goes to the other replicas, and
 * theirs reach this hub's subscribers, with the same per-subscriber filters (log follows, command
 * followers, roles). Events from other replicas are not published again (deliverRemote is not
 * heard by onOutgoing), so nothing loops. With `state`, they are applied to this replica's
 * registries first (remote-state.ts), so that its REST answers show them too. Returns the
 * function that unbinds it.
 */
export function bindLiveFanout(hub: LiveHub, fanout: Pick<EventFanout, 'publish' | 'listen'>, log: FastifyBaseLogger, state?: ReplicaState): () => void {
  const publish = livePublisher(fanout, log);
  const offOutgoing = hub.onOutgoing(publish);
  const apply = (message: LiveMessage) => () => {
    const unknown = applyRemoteState(state!, message);
    if (!unknown) return;
    // Made on another replica after this one loaded the database: read it, then apply the event.
    // Inside the hub's guard as the first try was: its subscribers had the event, the bus must not have it again.
    const reapply = (known: boolean) => {
      if (!known) return;
      try {
        hub.applyQuietly(() => applyRemoteState(state!, message));
      } catch (err) {
        log.warn({ ...unknown, type: message.type, err: (err as Error).message }, 'cannot apply a live event to this replica: shown here after a restart');
      }
    };
    loadUnknown(state!, unknown).then(reapply, (err: Error) => log.warn({ ...unknown, type: message.type, err: err.message }, 'cannot read what a live event names: shown here after a restart'));
  };
  const offIncoming = fanout.listen((message) => hub.deliverRemote(message, state ? apply(message) : undefined));
  return () => {
    offOutgoing();
    offIncoming();
  };
}

/**
 * What sends the hub's events to the bus: best effort, like a dashboard's own socket (a lost event
 * is made good by the next REST load). Failures are written once per few seconds with a count: a
 * bus away or slow fails every event, thousands a second.
 */
export function livePublisher(fanout: Pick<EventFanout, 'publish'>, log: FastifyBaseLogger): (message: LiveMessage) => void {
  const cannotPublish = rateLimitedWarning(log, 'cannot publish live events to the other replicas');
  const dropped = rateLimitedWarning(log, 'live events dropped: more waiting for the bus than the fan-out keeps');
  return (message) => {
    for (const part of splitForTheBus(message)) {
      fanout.publish(part).catch((err: Error) => (err instanceof QueueFullError ? dropped : cannotPublish)({ type: part.type, err: err.message }));
    }
  };
}

/** Log batches in parts of at most LOG_EVENT_BYTES (a single larger record goes alone); the rest as it is. */
export function splitForTheBus(message: LiveMessage): LiveMessage[] {
  if (message.type !== 'logs.records') return [message];
  const parts: LogsRecordsLiveMessage[] = [];
  let records: LogsRecordsLiveMessage['data']['records'] = [];
  let bytes = 0;
  for (const record of message.data.records) {
    const size = Buffer.byteLength(JSON.stringify(record));
    if (records.length && bytes + size > LOG_EVENT_BYTES) {
      parts.push({ type: 'logs.records', data: { records } });
      records = [];
      bytes = 0;
    }
    records.push(record);
    bytes += size;
  }
  if (records.length) parts.push({ type: 'logs.records', data: { records } });
  return parts;
}
