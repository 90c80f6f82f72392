import WebSocket from 'ws';
import type { ApiClient } from './api-client.js';

export interface LiveOptions {
  /** Sent again after every (re)connection, e.g. a logs.subscribe. */
  onOpen?: (send: (message: object) => void) => void;
  onMessage: (message: any) => void;
  /** Connection state changes, to tell the user. */
  onStatus?: (status: 'connected' | 'lost', detail?: string) => void;
}

/**
 * /api/v1/live with reconnection (exponential backoff up to 10 s). Each (re)connection starts
 * with a fresh snapshot, so the caller's view heals by itself.
 */
export class LiveConnection {
  private socket: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly api: ApiClient, private readonly options: LiveOptions) {}

  start(): void {
    const socket = new WebSocket(this.api.wsUrl('/api/v1/live'), { headers: this.api.authHeaders, perMessageDeflate: false });
    this.socket = socket;
    socket.on('open', () => {
      this.attempt = 0;
      this.options.onStatus?.('connected');
      this.options.onOpen?.((m) => socket.send(JSON.stringify(m)));
    });
    socket.on('message', (data) => {
      try {
        this.options.onMessage(JSON.parse(data.toString()));
      } catch {
        // a frame we cannot read is skipped; the next snapshot repairs the view
      }
    });
    socket.on('unexpected-response', (_req, res) => {
      this.options.onStatus?.('lost', `HTTP ${res.statusCode}${res.statusCode === 401 ? ': run dvic login' : ''}`);
      socket.terminate();
    });
    socket.on('error', () => undefined);
    socket.on('close', (code, reason) => {
      if (this.stopped) return;
      this.options.onStatus?.('lost', reason.toString() || `code ${code}`);
      const delay = Math.min(10_000, 500 * 2 ** this.attempt++);
      this.timer = setTimeout(() => this.start(), delay);
    });
  }

  send(message: object): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close();
  }
}
