import type { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import type { FastifyBaseLogger } from 'fastify';
import { CloseCode, ErrorCode, levelNumber, type Alert, type EnrollmentView, type LiveClientMessage, type LiveMessage, type ProtocolValidator, type ServerStatus } from '@dvic/protocol';
import { ApiError } from '../errors.js';
import type { LogsRepository } from '../repositories/logs-repository.js';
import type { Role } from '../repositories/users-repository.js';
import { roleRank } from '../repositories/users-repository.js';
import type { CommandService } from '../services/command-service.js';
import type { LogWriter } from '../services/log-writer.js';
import type { StorageMonitor } from '../services/storage-monitor.js';
import type { DemoCatalog } from './demo-catalog.js';
import type { DemoRegistry } from './demo-registry.js';
import type { DeviceRegistry } from './device-registry.js';
import { LogTail } from './log-tail.js';
import type { NodeRegistry } from './node-registry.js';

/** A subscriber that lets this much pile up unsent is too slow to follow the lab; it is dropped. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

type ClientMessageOf<T extends LiveClientMessage['type']> = Extract<LiveClientMessage, { type: T }>;
type ClientHandlers = { [T in LiveClientMessage['type']]: (socket: WebSocket, message: ClientMessageOf<T>) => void };

export interface LiveSources {
  registry: NodeRegistry;
  devices: DeviceRegistry;
  demos: DemoRegistry;
  catalog: DemoCatalog;
  logWriter: LogWriter;
  logStore: LogsRepository;
  commands: CommandService;
  storage: StorageMonitor;
  /** Enrollment progress (adding machines over SSH). */
  enrollments?: EventEmitter<{ updated: [EnrollmentView] }>;
  /** Alerts firing, resolving, acknowledged (alerts engine). */
  alerts?: { on(event: 'updated', listener: (alert: Alert) => void): unknown };
}

/** A live message this hub sent its own subscribers (for other replicas' dashboards: cluster/live-fanout.ts). */
export type OutgoingListener = (message: LiveMessage) => void;

/** Replica-local: a replica's own storage and version, not the lab's. */
const LOCAL_ONLY: ReadonlySet<LiveMessage['type']> = new Set(['server.status', 'snapshot', 'live.error']);
/** Who may see a message of this type (the rest: everyone). Enrollments (hosts, users, host keys) are admin-only over REST too. */
const MIN_ROLE: Partial<Record<LiveMessage['type'], Role>> = { 'enrollment.updated': 'admin' };

/** Who is at the other end of a live socket. */
export interface LiveSubscriber {
  role: Role;
}

/**
 * /api/v1/live: fans node, demo, command and server events out to dashboards and CLIs (each
 * event serialised once), runs their log follows and streams the output of followed commands.
 */
export class LiveHub {
  private readonly subscribers = new Map<WebSocket, LiveSubscriber>();
  private readonly tail: LogTail;
  private readonly commandFollowers = new Map<string, Set<WebSocket>>();
  private readonly registry: NodeRegistry;
  private readonly outgoing = new Set<OutgoingListener>();
  /** Inside deliverRemote's applyState: what the registries announce is the remote event itself, sent once. */
  private applyingRemote = false;

  private readonly clientHandlers: ClientHandlers = {
    'logs.subscribe': (socket, { id, data: { node, demo, source, level, q, fields, after_id: afterId } }) => {
      const nodeId = node === undefined ? undefined : this.registry.resolve(node).id;
      this.tail.subscribe(socket, { nodeId, demo, source, minLevel: level ? levelNumber(level) : undefined, q, fields }, afterId, id);
    },
    'logs.unsubscribe': (socket) => this.tail.unsubscribe(socket),
    'commands.subscribe': (socket, { data }) => {
      // Command output is for those who may run commands.
      if (roleRank(this.subscribers.get(socket)?.role ?? 'viewer') < roleRank('operator')) {
        throw new ApiError(403, ErrorCode.forbidden, 'only operators and admins may follow command output');
      }
      for (const id of data.ids) {
        let followers = this.commandFollowers.get(id);
        if (!followers) this.commandFollowers.set(id, (followers = new Set()));
        followers.add(socket);
      }
    },
    'commands.unsubscribe': (socket, { data }) => {
      for (const id of data.ids) this.unfollow(id, socket);
    },
  };

  constructor(
    sources: LiveSources,
    private readonly validator: ProtocolValidator,
    private readonly serverStatus: () => ServerStatus,
    private readonly log: FastifyBaseLogger,
  ) {
    this.registry = sources.registry;
    this.tail = new LogTail(sources.logStore, log.child({ component: 'log-tail' }));
    sources.registry.on('status', (data) => this.broadcast({ type: 'node.status', data }));
    sources.registry.on('hardware', (data) => this.broadcast({ type: 'node.hardware', data }));
    sources.registry.on('updated', (node) => this.broadcast({ type: 'node.updated', data: { node } }));
    sources.devices.on('status', (data) => this.broadcast({ type: 'device.status', data }));
    sources.devices.on('updated', (device) => this.broadcast({ type: 'device.updated', data: { device } }));
    sources.devices.on('removed', (id) => this.broadcast({ type: 'device.removed', data: { device_id: id } }));
    sources.devices.on('seen', (devices) => this.broadcast({ type: 'devices.seen', data: { devices } }));
    sources.demos.on('changed', (data) => this.broadcast({ type: 'node.demos', data }));
    sources.catalog.on('lines', (data) => this.broadcast({ type: 'node.demos', data }));
    sources.catalog.on('updated', (demos) => this.broadcast({ type: 'demo.updated', data: { demos } }));
    sources.catalog.on('removed', (ids) => this.broadcast({ type: 'demo.removed', data: { ids } }));
    sources.logWriter.on('records', (records) => {
      this.tail.publish(records);
      this.tellOutgoing({ type: 'logs.records', data: { records } });
    });
    sources.commands.on('updated', (command) => this.broadcast({ type: 'command.updated', data: { command } }));
    sources.commands.on('output', (data) => {
      const message: LiveMessage = { type: 'command.output', data };
      this.sendToFollowers(data.command_id, message);
      this.tellOutgoing(message);
    });
    sources.storage.on('changed', () => this.broadcast({ type: 'server.status', data: this.serverStatus() }));
    sources.enrollments?.on('updated', (enrollment) => this.broadcast({ type: 'enrollment.updated', data: { enrollment } }));
    sources.alerts?.on('updated', (alert) => this.broadcast({ type: 'alert.updated', data: { alert } }));
  }

  subscribe(socket: WebSocket, viewer: LiveSubscriber): void {
    this.subscribers.set(socket, viewer);
    const forget = () => this.forget(socket);
    socket.on('close', forget);
    socket.on('error', forget);
    socket.on('message', (data, isBinary) => this.onClientMessage(socket, isBinary ? null : data.toString()));
    this.send(socket, { type: 'snapshot', data: { nodes: this.registry.list(), server: this.serverStatus() } });
  }

  /** Hears every lab event this hub sends (not replica-local ones: server.status); returns the unsubscribe. */
  onOutgoing(listener: OutgoingListener): () => void {
    this.outgoing.add(listener);
    return () => this.outgoing.delete(listener);
  }

  /**
   * Another replica's event, to this hub's subscribers with the filters its own events get (log
   * follows, command followers, roles). Not told to onOutgoing listeners: it must not go back out.
   * applyState brings this replica's registries up to date first; what they announce meanwhile is
   * neither sent (the event itself is) nor published.
   */
  deliverRemote(message: LiveMessage, applyState?: () => void): void {
    if (LOCAL_ONLY.has(message.type)) return;
    if (applyState) this.applyQuietly(applyState);
    if (message.type === 'logs.records') this.tail.publish(message.data.records);
    else if (message.type === 'command.output') this.sendToFollowers(message.data.command_id, message);
    else this.sendToSubscribers(message);
  }

  /**
   * Another replica's change applied to this replica's registries later than its event (cluster/
   * live-fanout.ts, once what it names was read): what they announce is neither sent to this hub's
   * subscribers (the event already was) nor published again.
   */
  applyQuietly(apply: () => void): void {
    this.applyingRemote = true;
    try {
      apply();
    } finally {
      this.applyingRemote = false;
    }
  }

  get count(): number {
    return this.subscribers.size;
  }

  closeAll(): void {
    this.tail.stop();
    for (const socket of this.subscribers.keys()) socket.close(CloseCode.goingAway, 'server shutting down');
  }

  private onClientMessage(socket: WebSocket, text: string | null): void {
    const { result, message } = text === null
      ? { result: { ok: false as const, code: ErrorCode.invalidMessage, message: 'binary frames are not accepted here' }, message: undefined }
      : this.validator.parse(text, 'client-to-server');
    if (!result.ok) return this.reply(socket, result.code, result.message);
    const m = message as LiveClientMessage;
    try {
      (this.clientHandlers[m.type] as (s: WebSocket, m: LiveClientMessage) => void)(socket, m);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      this.reply(socket, err.code, err.message, err.extras.candidates);
    }
  }

  /** A refused client message: the same code, message and (for an ambiguous node) candidates as REST. */
  private reply(socket: WebSocket, code: string, message: string, candidates?: { id: string; name: string }[]): void {
    this.send(socket, { type: 'live.error', data: { code, message: message.slice(0, 1024), ...(candidates ? { candidates } : {}) } });
  }

  private send(socket: WebSocket, message: LiveMessage): void {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
  }

  private unfollow(id: string, socket: WebSocket): void {
    const followers = this.commandFollowers.get(id);
    followers?.delete(socket);
    if (followers?.size === 0) this.commandFollowers.delete(id);
  }

  private forget(socket: WebSocket): void {
    this.subscribers.delete(socket);
    this.tail.unsubscribe(socket);
    for (const id of [...this.commandFollowers.keys()]) this.unfollow(id, socket);
  }

  private sendToFollowers(commandId: string, message: LiveMessage): void {
    const followers = this.commandFollowers.get(commandId);
    if (!followers) return;
    this.sendAll(followers, JSON.stringify(message));
  }

  /** A lab event of this replica: to its subscribers and to the other replicas. */
  private broadcast(message: LiveMessage): void {
    if (this.applyingRemote) return;
    this.sendToSubscribers(message);
    this.tellOutgoing(message);
  }

  private tellOutgoing(message: LiveMessage): void {
    if (LOCAL_ONLY.has(message.type)) return;
    for (const listener of this.outgoing) {
      try {
        listener(message);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, type: message.type }, 'a live event listener failed');
      }
    }
  }

  /** To every subscriber, or only to those with the message type's minimum role. */
  private sendToSubscribers(message: LiveMessage): void {
    const minRole = MIN_ROLE[message.type];
    const sockets = minRole ? [...this.subscribers].filter(([, s]) => roleRank(s.role) >= roleRank(minRole)).map(([socket]) => socket) : [...this.subscribers.keys()];
    if (sockets.length > 0) this.sendAll(sockets, JSON.stringify(message));
  }

  private sendAll(sockets: Iterable<WebSocket>, text: string): void {
    for (const socket of [...sockets]) {
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        this.log.warn('dropping a live subscriber that cannot keep up');
        socket.close(CloseCode.slowConsumer, 'too slow: reconnect to get a fresh snapshot');
        this.forget(socket);
        continue;
      }
      if (socket.readyState === socket.OPEN) socket.send(text);
    }
  }
}
