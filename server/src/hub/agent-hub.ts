import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import { CloseCode, type ProtocolValidator } from '@dvic/protocol';
import type { ServerConfig } from '../config.js';
import { AgentConnection } from './agent-connection.js';
import type { HubServices, MessageOf, RelayedType } from './handlers/index.js';
import { HubStats } from './hub-stats.js';
import { NonceBook } from './nonce-book.js';

const MAX_MISSED_PONGS = 3;

/** One event per relayed message type: [node id, the message]. */
type RelayedEvents = { [T in RelayedType]: [nodeId: string, message: MessageOf<T>] };

export interface AgentHubEvents extends RelayedEvents {
  /** A node's agent authenticated (also after a reconnect). */
  connected: [nodeId: string];
  /** A node's agent connection ended, or was replaced by a newer one. */
  disconnected: [nodeId: string];
  /** A terminal or tunnel frame from an agent. */
  binary: [{ nodeId: string; opcode: number; channel: number; payload: Buffer }];
}

/** Holds one authenticated WebSocket per node, pings them, and routes messages to nodes. */
export class AgentHub extends EventEmitter<AgentHubEvents> {
  readonly stats = new HubStats();
  readonly nonces: NonceBook;
  private readonly byNode = new Map<string, AgentConnection>();
  private pingTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The update-signing public key sent in every welcome (set by the agent-updates plugin). */
  updateKeyPem: string | undefined;

  constructor(
    readonly services: HubServices,
    readonly config: Pick<ServerConfig, 'authTimeoutMs' | 'pingIntervalMs' | 'metricsIntervalS'>,
    readonly validator: ProtocolValidator,
    readonly log: FastifyBaseLogger,
  ) {
    super();
    this.nonces = new NonceBook(Math.max(10 * config.authTimeoutMs, 600_000));
    services.registry.on('status', ({ node_id, status }) => {
      if (status === 'revoked') this.byNode.get(node_id)?.close(CloseCode.nodeRevoked, 'node revoked');
    });
  }

  accept(socket: WebSocket, request: IncomingMessage): void {
    if (this.stopped) return socket.close(CloseCode.goingAway, 'server shutting down');
    this.stats.connectionsAccepted++;
    new AgentConnection(socket, request, this);
  }

  /** The server is shutting down: connections end because of it, not because of the nodes. */
  get stopping(): boolean {
    return this.stopped;
  }

  get registry() {
    return this.services.registry;
  }

  /** Makes this connection the node's one connection (an older one is closed); false while shutting down. */
  register(connection: AgentConnection): boolean {
    if (this.stopped) {
      connection.close(CloseCode.goingAway, 'server shutting down');
      return false;
    }
    const previous = this.byNode.get(connection.nodeId!);
    this.byNode.set(connection.nodeId!, connection);
    if (previous) {
      previous.close(CloseCode.replaced, 'replaced by a newer connection');
      this.emit('disconnected', connection.nodeId!);
    }
    return true;
  }

  unregister(connection: AgentConnection, reason: string): void {
    if (this.byNode.get(connection.nodeId!) !== connection) return;
    this.byNode.delete(connection.nodeId!);
    this.registry.markOffline(connection.nodeId!, reason);
    this.emit('disconnected', connection.nodeId!);
    this.log.info({ nodeId: connection.nodeId, reason }, 'agent disconnected');
  }

  /** Sends a message to a node's agent; false when it is not connected or the message is too large for it. */
  sendTo(nodeId: string, message: object): boolean {
    const connection = this.byNode.get(nodeId);
    return connection ? connection.send(message) : false;
  }

  /** Sends a binary (terminal or tunnel) frame to a node's agent; false when it is not connected. */
  sendBinaryTo(nodeId: string, frame: Buffer): boolean {
    const connection = this.byNode.get(nodeId);
    if (!connection) return false;
    connection.sendBinary(frame);
    return true;
  }

  /** Bytes queued for a node's agent and not yet taken (0 when it is not connected). */
  bufferedTo(nodeId: string): number {
    return this.byNode.get(nodeId)?.bufferedBytes ?? 0;
  }

  /** What the node's agent announced in its hello; undefined when it is not connected. */
  capabilities(nodeId: string): readonly string[] | undefined {
    return this.byNode.get(nodeId)?.capabilities;
  }

  isConnected(nodeId: string): boolean {
    return this.byNode.has(nodeId);
  }

  get connectedCount(): number {
    return this.byNode.size;
  }

  start(): void {
    this.pingTimer = setInterval(() => this.pingAll(), this.config.pingIntervalMs);
    this.pingTimer.unref();
  }

  /** Closes every agent connection; their nodes are marked offline now, while the database is still open. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.pingTimer);
    for (const connection of [...this.byNode.values()]) {
      this.unregister(connection, 'server shutting down');
      connection.close(CloseCode.goingAway, 'server shutting down');
    }
  }

  private pingAll(): void {
    for (const connection of this.byNode.values()) {
      if (connection.missedPongs >= MAX_MISSED_PONGS - 1) {
        this.log.warn({ nodeId: connection.nodeId }, `agent missed ${MAX_MISSED_PONGS} pings`);
        connection.terminate();
        this.unregister(connection, `no answer to ${MAX_MISSED_PONGS} pings`);
      } else {
        connection.ping();
      }
    }
  }
}
