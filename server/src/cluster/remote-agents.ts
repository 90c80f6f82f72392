import type { FastifyBaseLogger } from 'fastify';
import { ErrorCode as NatsErrorCode, NatsError, type Msg, type NatsConnection, type Subscription } from 'nats';
import { decodeBinaryFrame, type AgentRelay, type AgentSend, type ReplicaReply } from '@dvic/protocol';
import type { AgentHubEvents } from '../hub/agent-hub.js';
import { RELAYED_TYPES, type RelayedType } from '../hub/handlers/index.js';
import type { ClusterNames } from './cluster-names.js';
import { agentMessageProblem, checkNodeId, ClusterSchema, decodeWire, encodeWire } from './cluster-wire.js';
import type { RoutedMessage } from './job-routes.js';
import { rateLimitedWarning, type Warn } from './rate-limited-warning.js';

export interface RemoteAgentsOptions {
  replica: string;
  /** How long the holder has to say whether it passed a message on. */
  timeoutMs: number;
  log: FastifyBaseLogger;
  /** The holder did not answer at all (no responder): it died, or lost the bus. */
  onUnreachable: (holder: string) => void;
}

/** Who takes the agents' answers to this replica's work (the cluster link). */
export interface RelayReceiver {
  fromHolder(nodeId: string, message: RoutedMessage & { type: RelayedType }): void;
  frameFromHolder(frame: AgentHubEvents['binary'][0]): void;
}

const RELAYED = new Set<string>(RELAYED_TYPES);

/**
 * This replica's side of the cluster link for agents held by other replicas: sends them messages
 * (request/reply: the holder says whether it passed it on) and binary frames (published, in
 * order with the messages: one connection, one order), and takes the agents' answers back.
 */
export class RemoteAgents {
  private readonly subscriptions: Subscription[] = [];
  private receiver: RelayReceiver | undefined;
  // Per relayed message (an agent's output can be thousands a second): once per few seconds with a count.
  private readonly warnNotRelay: Warn;
  private readonly warnRelayRefused: Warn;

  constructor(private readonly nc: NatsConnection, private readonly names: ClusterNames, private readonly options: RemoteAgentsOptions) {
    this.warnNotRelay = rateLimitedWarning(options.log, 'relayed agent messages that are not ones: ignored');
    this.warnRelayRefused = rateLimitedWarning(options.log, 'relayed agent messages refused');
  }

  start(receiver: RelayReceiver): void {
    this.receiver = receiver;
    const { replica } = this.options;
    this.subscriptions.push(
      this.nc.subscribe(this.names.agentRelaySubject(replica), { callback: (err, msg) => { if (!err) this.onRelay(msg); } }),
      this.nc.subscribe(this.names.relayedFramesSubject(replica, '*'), { callback: (err, msg) => { if (!err) this.onRelayedFrame(msg); } }),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.subscriptions.splice(0).map((s) => s.drain().catch(() => undefined)));
  }

  /**
   * Sends a message to a node's agent through its holder. The answer comes later: false here
   * only when it cannot go at all (the bus closed, over its message limit); a holder that no
   * longer has the agent, or no holder at all, is logged, and the node's going offline follows
   * from the holder registry.
   */
  sendTo(holder: string, nodeId: string, message: object): boolean {
    const send = { origin: this.options.replica, node_id: nodeId, message } as AgentSend;
    const data = encodeWire(send);
    if (this.nc.isClosed() || data.length > this.nc.info!.max_payload) return false;
    this.nc.request(this.names.agentSendSubject(holder), data, { timeout: this.options.timeoutMs }).then(
      (answer) => this.onSendAnswer(holder, nodeId, send, answer),
      (err: unknown) => this.onSendFailed(holder, nodeId, err),
    );
    return true;
  }

  sendBinaryTo(holder: string, nodeId: string, frame: Buffer): boolean {
    if (this.nc.isClosed() || frame.length > this.nc.info!.max_payload) return false;
    try {
      this.nc.publish(this.names.agentFramesSubject(holder, this.options.replica, nodeId), frame);
      return true;
    } catch {
      return false;
    }
  }

  private onSendAnswer(holder: string, nodeId: string, send: AgentSend, answer: Msg): void {
    let reply: ReplicaReply;
    try {
      reply = decodeWire<ReplicaReply>(ClusterSchema.replicaReply, answer.data);
    } catch (err) {
      this.options.log.warn({ holder, nodeId, err: (err as Error).message }, 'the holding replica answered something else than a reply');
      return;
    }
    if (!reply.ok) this.options.log.warn({ holder, nodeId, type: send.message.type, error: reply.error }, 'the holding replica refused a message for its agent');
    else if (reply.result.sent !== true) this.options.log.info({ holder, nodeId, type: send.message.type }, 'the holding replica could not pass a message to its agent (it left, or the message is too large for it)');
  }

  private onSendFailed(holder: string, nodeId: string, err: unknown): void {
    const noResponders = err instanceof NatsError && err.code === NatsErrorCode.NoResponders;
    this.options.log.warn({ holder, nodeId, err: (err as Error).message }, noResponders
      ? 'the replica holding the node is not listening (it died): the node goes offline when its lease expires'
      : 'the replica holding the node did not answer in time');
    if (noResponders) this.options.onUnreachable(holder);
  }

  private onRelay(msg: Msg): void {
    let relay: AgentRelay;
    try {
      relay = decodeWire<AgentRelay>(ClusterSchema.agentRelay, msg.data);
    } catch (err) {
      this.warnNotRelay({ err: (err as Error).message });
      return;
    }
    const problem = RELAYED.has(relay.message.type) ? agentMessageProblem(relay.message) : `${relay.message.type} is not relayed`;
    if (problem) {
      this.warnRelayRefused({ holder: relay.holder, nodeId: relay.node_id, problem });
      return;
    }
    this.receiver?.fromHolder(relay.node_id, relay.message as RoutedMessage & { type: RelayedType });
  }

  private onRelayedFrame(msg: Msg): void {
    const nodeId = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    const frame = decodeBinaryFrame(Buffer.from(msg.data));
    try {
      checkNodeId(nodeId);
    } catch {
      return;
    }
    if (frame) this.receiver?.frameFromHolder({ nodeId, ...frame });
  }
}
