import type { WebSocket } from 'ws';
import type { FastifyBaseLogger } from 'fastify';
import { BinaryOpcode, CloseCode, encodeBinaryFrame, TERMINAL_WINDOW_BYTES, type TerminalCloseMessage, type TerminalOpenedMessage } from '@dvic/protocol';
import type { NodeLink } from '../hub/node-link.js';
import type { NodeRegistry } from '../live/node-registry.js';
import type { AuditTrail } from './audit-trail.js';
import type { Requester } from './command-service.js';

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

  constructor(
    private readonly hub: NodeLink,
    private readonly registry: NodeRegistry,
    private readonly audit: AuditTrail,
    private readonly idleMs: number,
    private readonly log: FastifyBaseLogger,
  ) {
    this.idleTimer = setInterval(() => this.closeIdle(), Math.min(idleMs, 10_000));
    this.idleTimer.unref();
    hub.on('disconnected', (nodeId) => {
      for (const session of [...this.sessions.values()]) if (session.nodeId === nodeId) this.end(session, 'the node disconnected', null);
    });
    hub.on('terminal.opened', (nodeId, message) => this.onOpened(nodeId, message));
    hub.on('terminal.close', (nodeId, message) => this.onAgentClose(nodeId, message));
    hub.on('binary', ({ nodeId, opcode, channel, payload }) => {
      if (opcode !== BinaryOpcode.terminalData) return;
      const session = this.sessions.get(key(nodeId, channel));
      if (!session) return;
      session.lastActivity = Date.now();
      if (session.viewer.readyState === session.viewer.OPEN) session.viewer.send(payload, { binary: true });
    });
  }

  /**
   * Opens a terminal on a node (id, name or id prefix) for a viewer, or tells the viewer why not
   * (close code terminalRefused). Opening, refusal and end are audited.
   */
  openFor(nodeRef: string, viewer: WebSocket, size: { cols: number; rows: number; user?: string }, by: Requester): void {
    const audit = (action: string, target: string, outcome: 'ok' | 'failed', details: Record<string, unknown>) =>
      this.audit.appendBestEffort({ user_id: by.userId, username: by.username, source_ip: by.ip, action, target, outcome, details });
    let node;
    try {
      node = this.registry.resolve(nodeRef);
    } catch (err) {
      return this.refuse(viewer, (err as Error).message, () => audit('terminal.open', nodeRef, 'failed', { reason: (err as Error).message }));
    }
    const nodeId = node.id;
    const problem = !this.hub.isConnected(nodeId) ? 'node is offline'
      : !this.hub.capabilities(nodeId)?.includes('terminal') ? 'the agent on this node cannot open terminals (update it)' : null;
    if (problem) return this.refuse(viewer, problem, () => audit('terminal.open', nodeId, 'failed', { reason: problem }));
    const session = this.open(nodeId, viewer, size, ({ reason, exitCode, durationMs }) => {
      audit('terminal.close', nodeId, 'ok', { channel: session.channel, reason, exit_code: exitCode, duration_ms: durationMs });
    });
    audit('terminal.open', nodeId, 'ok', { channel: session.channel, cols: size.cols, rows: size.rows, ...(size.user ? { user: size.user } : {}) });
  }

  private refuse(viewer: WebSocket, reason: string, record: () => void): void {
    record();
    viewer.send(JSON.stringify({ type: 'closed', exit_code: null, reason }));
    viewer.close(CloseCode.terminalRefused, reason.slice(0, 120));
  }

  /** Starts a terminal for a viewer; the viewer socket now belongs to the relay. */
  private open(nodeId: string, viewer: WebSocket, size: { cols: number; rows: number; user?: string }, onClose: TerminalSession['onClose']): TerminalSession {
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

  private onOpened(nodeId: string, { data }: TerminalOpenedMessage): void {
    const session = this.sessions.get(key(nodeId, data.channel));
    if (session?.viewer.readyState === session?.viewer.OPEN) session!.viewer.send(JSON.stringify({ type: 'opened', pid: data.pid ?? null }));
  }

  private onAgentClose(nodeId: string, { data }: TerminalCloseMessage): void {
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
        session.viewer.close(CloseCode.normal, reason.slice(0, 120));
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
