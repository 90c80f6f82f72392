/**
 * /api/v1/live: one WebSocket for the whole app, reconnecting with backoff. Messages are handed
 * over in batches, once per animation frame, so 1,000 nodes reporting every few seconds cost one
 * render per frame at most.
 */
import { CloseCode, type LiveClientMessage, type LiveMessage } from '@dvic/protocol/shared';
import { api, call, sessionEnded } from './client.js';
import { closeText, type LiveStatus } from './live-status.js';

export type { LiveStatus };

type Handler = (messages: LiveMessage[]) => void;

export class Live {
  private socket: WebSocket | null = null;
  private queue: LiveMessage[] = [];
  private frame = 0;
  private attempt = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private readonly handlers = new Set<Handler>();
  private readonly statusListeners = new Set<(s: LiveStatus) => void>();
  /** Built again and sent after every (re)connection: a log tail resumes after the last id seen. */
  private readonly subscriptions = new Map<string, () => LiveClientMessage>();
  status: LiveStatus = { state: 'connecting' };

  start(): void {
    this.stopped = false;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/live`;
    const socket = new WebSocket(url);
    this.socket = socket;
    this.setStatus({ state: 'connecting' });
    socket.onopen = () => {
      this.attempt = 0;
      this.setStatus({ state: 'open' });
      for (const message of this.subscriptions.values()) socket.send(JSON.stringify(message()));
    };
    socket.onmessage = (event) => {
      try {
        this.queue.push(JSON.parse(event.data as string) as LiveMessage);
      } catch {
        return;
      }
      if (!this.frame) this.frame = requestAnimationFrame(() => this.deliver());
    };
    socket.onclose = (event) => this.closed(event.code, event.reason);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.socket?.close();
  }

  /** Keeps a subscription (e.g. logs.subscribe) alive across reconnections, under a key; null ends it. */
  subscribe(key: string, message: (() => LiveClientMessage) | null): void {
    if (message) this.subscriptions.set(key, message);
    else this.subscriptions.delete(key);
    if (message) this.send(message());
  }

  send(message: LiveClientMessage): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  onMessages(handler: Handler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  onStatus(listener: (s: LiveStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Each time the stream opens again after it was away (what it missed then: fetch again). */
  onReopen(listener: () => void): () => void {
    let wasOpen = this.status.state === 'open';
    return this.onStatus((status) => {
      if (status.state === 'open' && !wasOpen) listener();
      wasOpen = status.state === 'open';
    });
  }

  private closed(code: number, reason: string): void {
    if (this.stopped) return;
    if (code === CloseCode.sessionEnded) {
      this.stopped = true;
      sessionEnded();
      return;
    }
    this.setStatus({ state: 'lost', detail: closeText(code, reason) });
    // A socket refused at the handshake says nothing: ask the API whether the session is still
    // valid (a 401 there ends it).
    if (code === 1006) void call(api.GET('/api/v1/auth/me')).catch(() => undefined);
    const delay = code === CloseCode.slowConsumer ? 0 : Math.min(15_000, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
    this.retry = setTimeout(() => this.start(), delay);
  }

  private deliver(): void {
    this.frame = 0;
    const batch = this.queue;
    this.queue = [];
    performance.mark('dvic:batch-start');
    for (const handler of this.handlers) handler(batch);
    performance.measure('dvic:batch', 'dvic:batch-start');
  }

  private setStatus(status: LiveStatus): void {
    this.status = status;
    for (const listener of this.statusListeners) listener(status);
  }
}

export const live = new Live();
