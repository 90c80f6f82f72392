import type { WebSocket } from 'ws';
import type { FastifyBaseLogger } from 'fastify';
import { BinaryOpcode, encodeBinaryFrame, type TerminalCloseMessage, type TerminalOpenedMessage } from '@dvic/protocol';
import type { AgentHub } from '../hub/agent-hub.js';

/**
 * Bytes the agent may send on a terminal before the viewer has acknowledged them. Every hop
 * (agent, server, browser) holds at most this much per terminal, whatever the program prints.
 */
export const TERMINAL_WINDOW_BYTES = 256 * 1024;

export interface TerminalSession {
  nodeId: string;
  channel: number;
  viewer: WebSocket;
  openedAt: number;
  lastActivity: number;
  onClose: (info: { reason: string; exitCode: number | null; durationMs: number }) => void;
}

/**
 * Relays PTY sessions between a viewer's WebSocket (browser or `dvic shell`) and a node's agent.
 * Viewer protocol: binary frames are keyboard input; text frames are JSON {type: "resize", cols,
 * rows} or {type: "ack", bytes} (output written to the screen, which lets the agent send more).
 * Server to viewer: binary frames are output; text frames {type: "opened", pid} and
 * {type: "closed", exit_code, reason}.
 */
export class TerminalRelay {
  private readonly sessions = new Map<string, TerminalSession>();
  private nextChannel = 1;
  private readonly idleTimer: NodeJS.Timeout;

  constructor(private readonly hub: AgentHub, private readonly idleMs: number, private readonly log: FastifyBaseLogger) {
    this.idleTimer = setInterval(() => this.closeIdle(), Math.min(idleMs, 10_000));
    this.idleTimer.unref();
    hub.on('disconnected', (nodeId) => {
      for (const session of [...this.sessions.values()]) if (session.nodeId === nodeId) this.end(session, 'the node disconnected', null);
    });
    hub.on('binary', ({ nodeId, opcode, channel, payload }) => {
      if (opcode !== BinaryOpcode.terminalData) return;
      const session = this.sessions.get(key(nodeId, channel));
      if (!session) return;
      session.lastActivity = Date.now();
      if (session.viewer.readyState === session.viewer.OPEN) session.viewer.send(payload, { binary: true });
    });
  }

  /** Starts a terminal for a viewer; the viewer socket now belongs to the relay. */
  open(nodeId: string, viewer: WebSocket, size: { cols: number; rows: number; user?: string }, onClose: TerminalSession['onClose']): TerminalSession {
    const channel = this.allocateChannel(nodeId);
    const now = Date.now();
    const session: TerminalSession = { nodeId, channel, viewer, openedAt: now, lastActivity: now, onClose };
    this.sessions.set(key(nodeId, channel), session);
    this.hub.sendTo(nodeId, { type: 'terminal.open', data: { channel, cols: size.cols, rows: size.rows, term: 'xterm-256color', ...(size.user ? { user: size.user } : {}) } });
    viewer.on('message', (data, isBinary) => this.onViewerFrame(session, data as Buffer, isBinary));
    viewer.on('close', () => this.end(session, 'closed by the viewer', null, true));
    viewer.on('error', () => this.end(session, 'viewer connection failed', null, true));
    return session;
  }

  onOpened(nodeId: string, { data }: TerminalOpenedMessage): void {
    const session = this.sessions.get(key(nodeId, data.channel));
    if (session?.viewer.readyState === session?.viewer.OPEN) session!.viewer.send(JSON.stringify({ type: 'opened', pid: data.pid ?? null }));
  }

  onAgentClose(nodeId: string, { data }: TerminalCloseMessage): void {
    const session = this.sessions.get(key(nodeId, data.channel));
    if (session) this.end(session, data.reason ?? 'the shell exited', data.exit_code ?? null);
  }

  get count(): number {
    return this.sessions.size;
  }

  stop(): void {
    clearInterval(this.idleTimer);
    for (const session of [...this.sessions.values()]) this.end(session, 'server shutting down', null);
  }

  private onViewerFrame(session: TerminalSession, data: Buffer, isBinary: boolean): void {
    session.lastActivity = Date.now();
    if (isBinary) {
      this.hub.sendBinaryTo(session.nodeId, encodeBinaryFrame(BinaryOpcode.terminalData, session.channel, data));
      return;
    }
    let message: { type?: unknown; cols?: unknown; rows?: unknown; bytes?: unknown };
    try {
      message = JSON.parse(data.toString());
    } catch {
      return;
    }
    if (message.type === 'resize' && isDimension(message.cols) && isDimension(message.rows)) {
      this.hub.sendTo(session.nodeId, { type: 'terminal.resize', data: { channel: session.channel, cols: message.cols, rows: message.rows } });
    } else if (message.type === 'ack' && Number.isInteger(message.bytes) && (message.bytes as number) > 0) {
      const credit = Buffer.alloc(4);
      credit.writeUInt32BE(Math.min(message.bytes as number, TERMINAL_WINDOW_BYTES));
      this.hub.sendBinaryTo(session.nodeId, encodeBinaryFrame(BinaryOpcode.credit, session.channel, credit));
    }
  }

  /** Ends a session once: tells the side that did not end it, and reports it. */
  private end(session: TerminalSession, reason: string, exitCode: number | null, byViewer = false): void {
    if (!this.sessions.delete(key(session.nodeId, session.channel))) return;
    if (!byViewer) {
      if (session.viewer.readyState === session.viewer.OPEN) {
        session.viewer.send(JSON.stringify({ type: 'closed', exit_code: exitCode, reason }));
        session.viewer.close(1000, reason.slice(0, 120));
      }
    }
    if (byViewer || reason !== 'the shell exited') {
      this.hub.sendTo(session.nodeId, { type: 'terminal.close', data: { channel: session.channel, reason: reason.slice(0, 256) } });
    }
    session.onClose({ reason, exitCode, durationMs: Date.now() - session.openedAt });
  }

  private closeIdle(): void {
    const now = Date.now();
    for (const session of [...this.sessions.values()]) {
      if (now - session.lastActivity > this.idleMs) this.end(session, 'closed after being idle', null);
    }
  }

  private allocateChannel(nodeId: string): number {
    for (;;) {
      const channel = this.nextChannel;
      this.nextChannel = this.nextChannel >= 0xffffffff ? 1 : this.nextChannel + 1;
      if (!this.sessions.has(key(nodeId, channel))) return channel;
    }
  }
}

const key = (nodeId: string, channel: number) => `${nodeId}:${channel}`;
const isDimension = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 1000;
