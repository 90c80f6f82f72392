import type WebSocket from 'ws';
import type { LiveMessage } from '@dvic/protocol';

type MessageOf<T extends LiveMessage['type']> = Extract<LiveMessage, { type: T }>;

/** Keeps what a /api/v1/live socket receives, typed by the protocol. */
export class LiveRecorder {
  readonly received: LiveMessage[] = [];

  constructor(socket: WebSocket) {
    socket.on('message', (data) => this.received.push(JSON.parse(data.toString()) as LiveMessage));
  }

  /** Every received message of this type, in order. */
  all<T extends LiveMessage['type']>(type: T): MessageOf<T>[] {
    return this.received.filter((m): m is MessageOf<T> => m.type === type);
  }

  first<T extends LiveMessage['type']>(type: T): MessageOf<T> | undefined {
    return this.all(type)[0];
  }
}
