import { EventEmitter } from 'node:events';
import crypto from 'node:crypto';
import type { AgentConfig, AgentStatus, HardwareState, HostFacts, NodeView } from '@dvic/protocol';
import type { NodeRecord, NodeStatus, NodesRepository } from '../repositories/nodes-repository.js';
import type { DeferredWrites } from '../services/deferred-writes.js';

export interface RegistryEvents {
  status: [{ node_id: string; status: NodeStatus; since: number; reason?: string }];
  hardware: [{ node_id: string; at: number; hardware: HardwareState }];
  updated: [NodeView];
}

export type { NodeView };

export class NodeNameTakenError extends Error {}

/**
 * The live state map: every node with its status and latest hardware, in memory. Status
 * changes are written through at once (rare, and must survive a crash); hardware and
 * last-seen times change every few seconds per node, so they are flushed in one batch.
 * When the disk refuses a write, memory stays right and the write waits (deferred writes, or
 * the next flush); changes an administrator asks for are written first and refused as a whole.
 */
export class NodeRegistry extends EventEmitter<RegistryEvents> {
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly dirty = new Set<string>();
  private readonly agentStatus = new Map<string, AgentStatus>();
  private flushTimer: NodeJS.Timeout | undefined;
  /** Set by whoever tracks demos (the demo registry); nodes start with none. */
  summarizeDemos: (nodeId: string) => { total: number; alive: number } = () => ({ total: 0, alive: 0 });

  constructor(private readonly repository: NodesRepository, private readonly flushIntervalMs: number, private readonly deferred: DeferredWrites) {
    super();
    const now = Date.now();
    for (const node of repository.all()) {
      this.nodes.set(node.id, node);
      // Nobody is connected to a server that just started: online nodes will come back on their own.
      if (node.status === 'online') {
        Object.assign(node, { status: 'offline', statusSince: node.lastSeen ?? now });
        this.writeStatus(node);
      }
    }
  }

  start(): void {
    this.flushTimer = setInterval(() => this.flush(), this.flushIntervalMs);
    this.flushTimer.unref();
  }

  stop(): void {
    clearInterval(this.flushTimer);
    this.flush();
  }

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  /** A node by id or by exact name. */
  find(ref: string): NodeRecord | undefined {
    const byId = this.nodes.get(ref);
    if (byId) return byId;
    for (const node of this.nodes.values()) if (node.name === ref) return node;
    return undefined;
  }

  list(): NodeView[] {
    return [...this.nodes.values()].sort((a, b) => a.name.localeCompare(b.name)).map((n) => this.toView(n));
  }

  view(id: string): NodeView | undefined {
    const node = this.nodes.get(id);
    return node && this.toView(node);
  }

  create(input: { name: string; labels?: Record<string, string>; publicKeyPem: string; isLocal?: boolean }): NodeRecord {
    this.assertNameFree(input.name);
    const now = Date.now();
    const node: NodeRecord = {
      id: crypto.randomUUID(), name: input.name, labels: input.labels ?? {}, agentConfig: {}, publicKey: input.publicKeyPem,
      isLocal: input.isLocal ?? false, createdAt: now, revokedAt: null, status: 'offline', statusSince: now,
      lastSeen: null, agentVersion: null, host: null, hardware: null, hardwareAt: null,
    };
    this.repository.insert(node);
    this.nodes.set(node.id, node);
    this.emit('updated', this.toView(node));
    return node;
  }

  update(id: string, change: { name?: string; labels?: Record<string, string> }): NodeView | undefined {
    const node = this.nodes.get(id);
    if (!node) return undefined;
    if (change.name !== undefined && change.name !== node.name) this.assertNameFree(change.name);
    const name = change.name ?? node.name;
    const labels = change.labels ?? node.labels;
    this.repository.updateIdentity(id, name, labels);
    Object.assign(node, { name, labels });
    const view = this.toView(node);
    this.emit('updated', view);
    return view;
  }

  /** Merges settings into the node's agent configuration and returns the result. */
  updateAgentConfig(id: string, change: AgentConfig): AgentConfig | undefined {
    const node = this.nodes.get(id);
    if (!node) return undefined;
    const agentConfig = { ...node.agentConfig, ...change };
    this.repository.updateAgentConfig(id, agentConfig);
    node.agentConfig = agentConfig;
    this.emit('updated', this.toView(node));
    return node.agentConfig;
  }

  /** Announces a node again, e.g. after its demo counts changed. */
  announce(id: string): void {
    const node = this.nodes.get(id);
    if (node) this.emit('updated', this.toView(node));
  }

  /** Gives a node a new key (its old private key stops working at once). */
  replaceKey(id: string, publicKeyPem: string): void {
    const node = this.nodes.get(id);
    if (!node) return;
    this.repository.updatePublicKey(id, publicKeyPem);
    node.publicKey = publicKeyPem;
  }

  revoke(id: string): NodeView | undefined {
    const node = this.nodes.get(id);
    if (!node) return undefined;
    if (node.status !== 'revoked') {
      // Written before it takes effect: a revocation the disk refused must not look done.
      const now = Date.now();
      this.repository.updateStatus({ ...node, status: 'revoked', statusSince: now, revokedAt: now });
      node.revokedAt = now;
      this.applyStatus(node, 'revoked', now, 'revoked by an administrator');
    }
    return this.toView(node);
  }

  markOnline(id: string, facts: { agentVersion: string; host: HostFacts }): void {
    const node = this.nodes.get(id);
    if (!node) return;
    node.agentVersion = facts.agentVersion;
    node.host = facts.host;
    node.lastSeen = Date.now();
    this.setStatus(node, 'online');
    this.emit('updated', this.toView(node));
  }

  markOffline(id: string, reason: string): void {
    const node = this.nodes.get(id);
    if (node && node.status === 'online') this.setStatus(node, 'offline', reason);
  }

  touch(id: string): void {
    const node = this.nodes.get(id);
    if (!node) return;
    node.lastSeen = Date.now();
    this.dirty.add(id);
  }

  /** The agent's own health as it last reported it; kept in memory (it is sent again on every connection). */
  recordAgentStatus(id: string, status: AgentStatus): void {
    const node = this.nodes.get(id);
    if (!node) return;
    this.agentStatus.set(id, status);
    this.emit('updated', this.toView(node));
  }

  recordHardware(id: string, hardware: HardwareState): void {
    const node = this.nodes.get(id);
    if (!node) return;
    const now = Date.now();
    node.hardware = hardware;
    node.hardwareAt = now;
    node.lastSeen = now;
    this.dirty.add(id);
    this.emit('hardware', { node_id: id, at: now, hardware });
  }

  /** Writes pending hardware and last-seen changes in one transaction; kept for the next flush when the disk refuses it. */
  flush(): void {
    if (this.dirty.size === 0) return;
    const batch = [...this.dirty].flatMap((id) => this.nodes.get(id) ?? []);
    try {
      this.repository.flushLiveState(batch);
      this.dirty.clear();
    } catch (err) {
      this.deferred.report(err, "storing the nodes' live state (hardware, last seen)");
    }
  }

  private setStatus(node: NodeRecord, status: NodeStatus, reason?: string): void {
    this.applyStatus(node, status, Date.now(), reason);
    this.writeStatus(node);
  }

  private applyStatus(node: NodeRecord, status: NodeStatus, now: number, reason?: string): void {
    node.status = status;
    node.statusSince = now;
    this.emit('status', { node_id: node.id, status, since: node.statusSince, ...(reason ? { reason } : {}) });
  }

  /** Writes the node's status as it is in memory when the write runs (now, or once the disk has room). */
  private writeStatus(node: NodeRecord): void {
    this.deferred.run(`node-status:${node.id}`, () => this.repository.updateStatus(node));
  }

  private assertNameFree(name: string): void {
    for (const node of this.nodes.values()) {
      if (node.name === name) throw new NodeNameTakenError(`a node named "${name}" already exists`);
    }
  }

  private toView(n: NodeRecord): NodeView {
    return {
      id: n.id, name: n.name, labels: n.labels, agent_config: n.agentConfig, status: n.status, status_since: n.statusSince, last_seen: n.lastSeen,
      agent_version: n.agentVersion, is_local: n.isLocal, created_at: n.createdAt, revoked_at: n.revokedAt,
      host: n.host, hardware: n.hardware, hardware_at: n.hardwareAt, demo_summary: this.summarizeDemos(n.id),
      agent_status: this.agentStatus.get(n.id) ?? null,
    };
  }
}
