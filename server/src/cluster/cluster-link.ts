import { EventEmitter } from 'node:events';
import type { AgentHub, AgentHubEvents } from '../hub/agent-hub.js';
import { RELAYED_TYPES, type MessageOf, type RelayedType } from '../hub/handlers/index.js';
import type { NodeLink } from '../hub/node-link.js';
import type { AgentGateway } from './agent-gateway.js';
import type { RelayReceiver, RemoteAgents } from './remote-agents.js';
import type { RemoteHolders, RemoteNode } from './remote-holders.js';

/**
 * The agent hub as the services of a replica see it: every node of the lab, whichever replica
 * holds its agent. A node held here goes through the hub; a node held by another replica is
 * connected as long as its claim lives, and messages and frames for it go to that replica, which
 * sends the agent's answers to this replica's work back here, emitted as the hub would.
 * `connected` / `disconnected` follow both the hub and the holder registry, so queued commands,
 * deploys waiting for a node and terminals behave as they do on a single server.
 */
export class ClusterLink extends EventEmitter<AgentHubEvents> implements NodeLink, RelayReceiver {
  constructor(
    private readonly hub: AgentHub,
    private readonly holders: RemoteHolders,
    private readonly gateway: AgentGateway,
    private readonly agents: RemoteAgents,
  ) {
    super();
    hub.on('connected', (nodeId) => this.onLocalConnected(nodeId));
    hub.on('disconnected', (nodeId) => this.onLocalDisconnected(nodeId));
    for (const type of RELAYED_TYPES) this.passOn(type);
    hub.on('binary', (frame) => {
      if (!gateway.relayFrameFromAgent(frame)) this.emit('binary', frame);
    });
    holders.on('changed', (nodeId, before, after) => this.onHolderChanged(nodeId, before, after));
  }

  /** What another replica sent back for this replica's work (RemoteAgents' onMessage). */
  fromHolder(nodeId: string, message: { type: RelayedType }): void {
    this.emitRelayed(message.type, nodeId, message as MessageOf<RelayedType>);
  }

  /** A binary frame another replica sent back (RemoteAgents' onFrame). */
  frameFromHolder(frame: AgentHubEvents['binary'][0]): void {
    this.emit('binary', frame);
  }

  isConnected(nodeId: string): boolean {
    return this.hub.isConnected(nodeId) || this.reachableHolder(nodeId) !== undefined;
  }

  sendTo(nodeId: string, message: object): boolean {
    if (this.hub.isConnected(nodeId)) return this.hub.sendTo(nodeId, message);
    const holder = this.reachableHolder(nodeId);
    return holder ? this.agents.sendTo(holder.replica, nodeId, message) : false;
  }

  sendBinaryTo(nodeId: string, frame: Buffer): boolean {
    if (this.hub.isConnected(nodeId)) return this.hub.sendBinaryTo(nodeId, frame);
    const holder = this.reachableHolder(nodeId);
    return holder ? this.agents.sendBinaryTo(holder.replica, nodeId, frame) : false;
  }

  /** Bytes queued here for the node's agent; for a node held elsewhere the holder bounds its own queue (AgentGateway). */
  bufferedTo(nodeId: string): number {
    return this.hub.bufferedTo(nodeId);
  }

  capabilities(nodeId: string): readonly string[] | undefined {
    return this.hub.capabilities(nodeId) ?? this.reachableHolder(nodeId)?.capabilities;
  }

  get stopping(): boolean {
    return this.hub.stopping;
  }

  /** The node's agent is on this replica's hub now; if another replica held it, that connection is over. */
  private onLocalConnected(nodeId: string): void {
    if (this.holders.get(nodeId)) this.emit('disconnected', nodeId);
    this.emit('connected', nodeId);
  }

  /** The agent left this replica; if another replica took it meanwhile, it is connected there. */
  private onLocalDisconnected(nodeId: string): void {
    this.gateway.forgetNode(nodeId);
    this.emit('disconnected', nodeId);
    if (!this.hub.isConnected(nodeId) && this.holders.get(nodeId)) this.emit('connected', nodeId);
  }

  /** Another replica took, left or handed on a node; nothing to say while the hub here holds its agent. */
  private onHolderChanged(nodeId: string, before: RemoteNode | undefined, after: RemoteNode | undefined): void {
    if (this.hub.isConnected(nodeId)) return;
    if (before) this.emit('disconnected', nodeId);
    if (after) this.emit('connected', nodeId);
  }

  private reachableHolder(nodeId: string): RemoteNode | undefined {
    const holder = this.holders.get(nodeId);
    return holder && !holder.unreachable ? holder : undefined;
  }

  /** The hub's relayed messages: to the replica whose work they answer, else to this replica's services. */
  private passOn<T extends RelayedType>(type: T): void {
    const listener = (nodeId: string, message: MessageOf<T>) => {
      if (!this.gateway.relayFromAgent(nodeId, message)) this.emitRelayed(type, nodeId, message);
    };
    (this.hub.on as (event: T, listener: (nodeId: string, message: MessageOf<T>) => void) => AgentHub)(type, listener);
  }

  private emitRelayed<T extends RelayedType>(type: T, nodeId: string, message: MessageOf<T>): void {
    (this.emit as (event: T, nodeId: string, message: MessageOf<T>) => boolean)(type, nodeId, message);
  }
}
