import WebSocket from 'ws';
import { CloseCode, type LiveClientMessage, type LiveMessage } from '@dvic/protocol/shared';
import type { Connection } from './connection.js';
import { CliError } from './errors.js';

export interface LiveOptions {
  /** Called on every (re)connection, e.g. to send a logs.subscribe that resumes where it left off. */
  onOpen?: (send: (message: LiveClientMessage) => void) => void;
  onMessage: (message: LiveMessage) => void;
  /** Connection state changes, to tell the user. */
  onStatus?: (status: 'connected' | 'lost', detail?: string) => void;
  /** The stream cannot go on (the session or token was ended): the command should stop with this. */
  onEnd?: (error: CliError) => void;
}

/** Why the live stream closed, in words. */
export function liveCloseText(code: number, reason: string): string {
  if (code === CloseCode.slowConsumer) return 'fell behind the live stream, catching up';
  if (code === CloseCode.goingAway) return 'the server is restarting';
  return reason || 'the connection dropped';
}

/**
 * /api/v1/live with reconnection (exponential backoff up to 10 s; at once after falling behind).
 * Each (re)connection starts with a fresh snapshot, so the caller's view heals by itself.
 */
export class LiveConnection {
  private socket: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The HTTP answer that refused the last connection, told when it closes. */
  private refusal = '';

  constructor(private readonly server: Connection, private readonly options: LiveOptions) {}

  start(): void {
    const socket = new WebSocket(this.server.wsUrl('/api/v1/live'), { headers: this.server.authHeaders, perMessageDeflate: false });
    this.socket = socket;
    socket.on('open', () => {
      this.attempt = 0;
      this.options.onStatus?.('connected');
      this.options.onOpen?.((m) => socket.send(JSON.stringify(m)));
    });
    socket.on('message', (data) => {
      let message: LiveMessage;
      try {
        message = JSON.parse(data.toString()) as LiveMessage;
      } catch {
        return; // a frame we cannot read is skipped; the next snapshot repairs the view
      }
      this.options.onMessage(message);
    });
    socket.on('unexpected-response', (_req, res) => {
      socket.terminate();
      if (res.statusCode === 401) this.end('not signed in (the token was revoked or has expired): run dvic login');
      else this.refusal = `HTTP ${res.statusCode}`;
    });
    socket.on('error', () => undefined);
    socket.on('close', (code, reason) => {
      if (this.stopped) return;
      if (code === CloseCode.sessionEnded) return this.end('the session was ended (signed out, token revoked or user disabled): run dvic login');
      this.options.onStatus?.('lost', this.refusal || liveCloseText(code, reason.toString()));
      this.refusal = '';
      const delay = code === CloseCode.slowConsumer ? 0 : Math.min(10_000, 500 * 2 ** this.attempt++);
      this.timer = setTimeout(() => this.start(), delay);
    });
  }

  send(message: LiveClientMessage): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close();
  }

  private end(message: string): void {
    this.stop();
    this.options.onEnd?.(new CliError(message));
  }
}
