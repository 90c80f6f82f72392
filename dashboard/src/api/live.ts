/**
 * /api/v1/live: one WebSocket for the whole app, reconnecting with backoff. Messages are handed
 * over in batches, once per animation frame, so 1,000 nodes reporting every few seconds cost one
 * render per frame at most.
 */
export type LiveStatus = 'connecting' | 'open' | 'lost';

type Handler = (messages: any[]) => void;

export class Live {
  private socket: WebSocket | null = null;
  private queue: any[] = [];
  private frame = 0;
  private attempt = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private readonly handlers = new Set<Handler>();
  private readonly statusListeners = new Set<(s: LiveStatus) => void>();
  /** Sent again after every (re)connection. */
  private readonly subscriptions = new Map<string, object>();
  status: LiveStatus = 'connecting';

  start(): void {
    this.stopped = false;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/live`;
    const socket = new WebSocket(url);
    this.socket = socket;
    this.setStatus('connecting');
    socket.onopen = () => {
      this.attempt = 0;
      this.setStatus('open');
      for (const message of this.subscriptions.values()) socket.send(JSON.stringify(message));
    };
    socket.onmessage = (event) => {
      try {
        this.queue.push(JSON.parse(event.data as string));
      } catch {
        return;
      }
      if (!this.frame) this.frame = requestAnimationFrame(() => this.deliver());
    };
    socket.onclose = () => {
      if (this.stopped) return;
      this.setStatus('lost');
      const delay = Math.min(15_000, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
      this.retry = setTimeout(() => this.start(), delay);
    };
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.socket?.close();
  }

  /** Keeps a subscription (e.g. logs.subscribe) alive across reconnections, under a key. */
  subscribe(key: string, message: object | null): void {
    if (message) this.subscriptions.set(key, message);
    else this.subscriptions.delete(key);
    if (this.socket?.readyState === WebSocket.OPEN && message) this.socket.send(JSON.stringify(message));
  }

  send(message: object): void {
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
