import type { WebSocket } from 'ws';
import type { FastifyBaseLogger } from 'fastify';
import { ErrorCode, type LiveClientMessage, type ProtocolValidator } from '@dvic/protocol';
import { levelNumber } from '../repositories/logs-repository.js';
import type { LogWriter } from '../services/log-writer.js';
import type { DemoRegistry } from './demo-registry.js';
import { LogTail } from './log-tail.js';
import type { NodeRegistry } from './node-registry.js';

/** A subscriber that lets this much pile up unsent is too slow to follow the lab; it is dropped. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
export const SLOW_CLIENT_CLOSE_CODE = 4010;

/**
 * /api/v1/live: fans node and demo events out to dashboards and CLIs (each event serialised
 * once), and runs their live log tails.
 */
export class LiveHub {
  private readonly subscribers = new Set<WebSocket>();
  private readonly tail = new LogTail();

  constructor(
    private readonly registry: NodeRegistry,
    demos: DemoRegistry,
    logWriter: LogWriter,
    private readonly validator: ProtocolValidator,
    private readonly log: FastifyBaseLogger,
  ) {
    registry.on('status', (data) => this.broadcast({ type: 'node.status', data }));
    registry.on('hardware', (data) => this.broadcast({ type: 'node.hardware', data }));
    registry.on('updated', (node) => this.broadcast({ type: 'node.updated', data: { node } }));
    demos.on('changed', (data) => this.broadcast({ type: 'node.demos', data }));
    logWriter.on('records', (records) => this.tail.publish(records));
  }

  subscribe(socket: WebSocket): void {
    this.subscribers.add(socket);
    const forget = () => {
      this.subscribers.delete(socket);
      this.tail.unsubscribe(socket);
    };
    socket.on('close', forget);
    socket.on('error', forget);
    socket.on('message', (data, isBinary) => this.onClientMessage(socket, isBinary ? null : data.toString()));
    socket.send(JSON.stringify({ type: 'snapshot', data: { nodes: this.registry.list() } }));
  }

  get count(): number {
    return this.subscribers.size;
  }

  closeAll(): void {
    this.tail.stop();
    for (const socket of this.subscribers) socket.close(1001, 'server shutting down');
  }

  private onClientMessage(socket: WebSocket, text: string | null): void {
    const { result, message } = text === null
      ? { result: { ok: false as const, code: ErrorCode.invalidMessage, message: 'binary frames are not accepted here' }, message: undefined }
      : this.validator.parse(text, 'client-to-server');
    if (!result.ok) return this.reply(socket, result.code, result.message);
    const m = message as LiveClientMessage;
    if (m.type === 'logs.unsubscribe') return this.tail.unsubscribe(socket);
    const { node, demo, source, level, q } = m.data;
    const nodeId = node ? (this.registry.get(node)?.id ?? this.registry.list().find((n) => n.name === node)?.id) : undefined;
    if (node && !nodeId) return this.reply(socket, ErrorCode.notFound, `node "${node}" not found`);
    this.tail.subscribe(socket, {
      nodeId, demo, source, minLevel: level ? levelNumber(level) : undefined,
      words: q?.toLowerCase().split(/\s+/).filter(Boolean),
    });
  }

  private reply(socket: WebSocket, code: string, message: string): void {
    socket.send(JSON.stringify({ type: 'live.error', data: { code, message: message.slice(0, 1024) } }));
  }

  private broadcast(message: object): void {
    if (this.subscribers.size === 0) return;
    const text = JSON.stringify(message);
    for (const socket of this.subscribers) {
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        this.log.warn('dropping a live subscriber that cannot keep up');
        socket.close(SLOW_CLIENT_CLOSE_CODE, 'too slow: reconnect to get a fresh snapshot');
        this.subscribers.delete(socket);
        this.tail.unsubscribe(socket);
        continue;
      }
      if (socket.readyState === socket.OPEN) socket.send(text);
    }
  }
}
