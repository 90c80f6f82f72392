import type { FastifyBaseLogger } from 'fastify';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { BinaryOpcode, decodeBinaryFrame, encodeBinaryFrame, type AgentRelay, type AgentSend, type ReplicaReply } from '@dvic/protocol';
import type { AgentHub, AgentHubEvents } from '../hub/agent-hub.js';
import { ChannelMap, type ChannelSpace } from './channel-map.js';
import type { ClusterNames } from './cluster-names.js';
import { checkReplicaId } from './cluster-names.js';
import { checkNodeId, ClusterSchema, decodeWire, encodeWire, errorReply } from './cluster-wire.js';
import { jobOf, JobRoutes, type RoutedMessage } from './job-routes.js';
import { rateLimitedWarning, type Warn } from './rate-limited-warning.js';

export interface AgentGatewayOptions {
  replica: string;
  /** A stream or job route unused this long is forgotten (its end was lost with a replica). */
  idleMs: number;
  log: FastifyBaseLogger;
}

/** The messages that carry a channel, and which kind of channel it is. */
const CHANNEL_SPACES: Record<string, ChannelSpace> = {
  'terminal.open': 'terminal', 'terminal.resize': 'terminal', 'terminal.close': 'terminal', 'terminal.opened': 'terminal',
  'tunnel.open': 'tunnel', 'tunnel.close': 'tunnel', 'tunnel.opened': 'tunnel',
  'deploy.request': 'artifact',
};
const STREAM_ENDS = new Set(['terminal.close', 'tunnel.close']);
const JOB_ENDS = new Set(['exec.result']);

/**
 * Bytes waiting on a held agent's socket past which frames from other replicas are dropped: the
 * agent's own flow control (credit windows, chunks asked for) keeps far below it, so only a
 * sender that ignores it fills this replica's memory, and it cannot.
 */
export const MAX_UNREAD_FROM_OTHERS = 16 * 1024 * 1024;

/**
 * The holding replica's side of the cluster link: takes what other replicas send to the agents
 * held here (messages over request/reply, binary frames published), gives their channels local
 * ones, and sends back to each replica the agent's answers to its own work, and nothing else.
 */
export class AgentGateway {
  private readonly channels = new ChannelMap();
  private readonly routes = new JobRoutes();
  private readonly subscriptions: Subscription[] = [];
  private readonly sweepTimer: NodeJS.Timeout;
  // Per frame or message, so thousands a second at worst (a slow agent, a flood): once per few seconds with a count.
  private readonly warnFrameDropped: Warn;
  private readonly warnRefused: Warn;
  private readonly warnCannotPass: Warn;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: ClusterNames,
    private readonly hub: AgentHub,
    private readonly options: AgentGatewayOptions,
  ) {
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), Math.min(60_000, options.idleMs / 4));
    this.sweepTimer.unref();
    this.warnFrameDropped = rateLimitedWarning(options.log, 'frames from another replica dropped: the agent reads slower than they are sent to');
    this.warnRefused = rateLimitedWarning(options.log, 'messages from another replica refused');
    this.warnCannotPass = rateLimitedWarning(options.log, 'cannot pass agent messages to the replica that asked for them');
  }

  start(): void {
    const { replica } = this.options;
    this.subscriptions.push(
      this.nc.subscribe(this.names.agentSendSubject(replica), { callback: (err, msg) => { if (!err) this.serveSend(msg); } }),
      this.nc.subscribe(this.names.agentFramesSubject(replica, '*', '*'), { callback: (err, msg) => { if (!err) this.serveFrame(msg); } }),
    );
  }

  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    await Promise.all(this.subscriptions.splice(0).map((s) => s.drain().catch(() => undefined)));
  }

  /** An agent's message: true when it answers another replica's work and went there (not for this one's services). */
  relayFromAgent(nodeId: string, message: RoutedMessage): boolean {
    const origin = this.originOf(nodeId, message);
    if (!origin) return false;
    const relay: AgentRelay = { holder: this.options.replica, node_id: nodeId, message: origin.message };
    this.publish(this.names.agentRelaySubject(origin.replica), encodeWire(relay), nodeId);
    return true;
  }

  /** An agent's binary frame: true when it belongs to another replica's terminal or tunnel and went there. */
  relayFrameFromAgent({ nodeId, opcode, channel, payload }: AgentHubEvents['binary'][0]): boolean {
    const mapped = this.channels.fromLocal(nodeId, channel);
    if (!mapped) return false;
    this.publish(this.names.relayedFramesSubject(mapped.origin, nodeId), encodeBinaryFrame(opcode as BinaryOpcode, mapped.channel, payload), nodeId);
    return true;
  }

  /** The agent's connection ended: its channels went with it (job routes stay: an update reconnects). */
  forgetNode(nodeId: string): void {
    this.channels.forgetNode(nodeId);
  }

  get mappedChannels(): number {
    return this.channels.size;
  }

  get jobRoutes(): number {
    return this.routes.size;
  }

  private originOf(nodeId: string, message: RoutedMessage): { replica: string; message: RoutedMessage } | undefined {
    if (CHANNEL_SPACES[message.type]) {
      const local = message.data.channel;
      const mapped = typeof local === 'number' ? this.channels.fromLocal(nodeId, local) : undefined;
      if (!mapped) return undefined;
      if (STREAM_ENDS.has(message.type)) this.channels.release(nodeId, mapped.local);
      return { replica: mapped.origin, message: { ...message, data: { ...message.data, channel: mapped.channel } } };
    }
    const job = jobOf(message);
    const replica = job && this.routes.originOf(nodeId, job);
    if (!replica) return undefined;
    if (JOB_ENDS.has(message.type)) this.routes.forget(nodeId, job);
    return { replica, message };
  }

  private serveSend(msg: Msg): void {
    let reply: ReplicaReply;
    try {
      const send = decodeWire<AgentSend>(ClusterSchema.agentSend, msg.data);
      reply = { ok: true, result: { sent: this.sendToAgent(send) } };
    } catch (err) {
      reply = errorReply(err);
    }
    try {
      msg.respond(encodeWire(reply));
    } catch {
      // This replica's bus connection closed meanwhile: the sender's request times out.
    }
  }

  /** Passes another replica's message to the agent, its channel made a local one; false when it could not be sent. */
  private sendToAgent({ origin, node_id: nodeId, message: sent }: AgentSend): boolean {
    const message = sent as RoutedMessage;
    if (!this.hub.isConnected(nodeId)) return false;
    let toAgent: RoutedMessage = message;
    const space = CHANNEL_SPACES[message.type];
    const channel = message.data.channel;
    if (space && typeof channel === 'number') {
      const local = this.channels.toLocal(nodeId, origin, space, channel);
      if (local === null) return this.refuse(nodeId, origin, 'too many streams open for other replicas');
      toAgent = { ...message, data: { ...message.data, channel: local } };
      if (STREAM_ENDS.has(message.type)) this.channels.release(nodeId, local);
    }
    const job = jobOf(message);
    if (job && !this.routes.remember(nodeId, job, origin)) return this.refuse(nodeId, origin, 'too much work from other replicas');
    return this.hub.sendTo(nodeId, toAgent);
  }

  private serveFrame(msg: Msg): void {
    const [origin, nodeId] = msg.subject.split('.').slice(-2) as [string, string];
    const frame = decodeBinaryFrame(Buffer.from(msg.data));
    try {
      checkReplicaId(origin);
      checkNodeId(nodeId);
    } catch {
      return; // not a subject a replica makes
    }
    if (!frame || !this.hub.isConnected(nodeId)) return;
    if (this.hub.bufferedTo(nodeId) > MAX_UNREAD_FROM_OTHERS) {
      this.warnFrameDropped({ nodeId, origin });
      return;
    }
    const local = this.channels.toLocal(nodeId, origin, frameSpace(frame.opcode, frame.channel), frame.channel);
    if (local === null) return;
    this.hub.sendBinaryTo(nodeId, encodeBinaryFrame(frame.opcode, local, frame.payload));
  }

  private refuse(nodeId: string, origin: string, why: string): false {
    this.warnRefused({ nodeId, origin, why });
    return false;
  }

  private publish(subject: string, data: Uint8Array, nodeId: string): void {
    try {
      this.nc.publish(subject, data);
    } catch (err) {
      this.warnCannotPass({ nodeId, err: (err as Error).message });
    }
  }

  private sweep(now: number): void {
    this.channels.sweep(now, this.options.idleMs);
    this.routes.sweep(now, this.options.idleMs);
  }
}

/** Credit frames go both ways for terminals and tunnels: the channel's range says which (tunnels have the upper half). */
function frameSpace(opcode: number, channel: number): ChannelSpace {
  if (opcode === BinaryOpcode.tunnelData) return 'tunnel';
  if (opcode === BinaryOpcode.artifactChunk) return 'artifact';
  if (opcode === BinaryOpcode.credit && channel >= 0x8000_0000) return 'tunnel';
  return 'terminal';
}
