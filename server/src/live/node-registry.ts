import { EventEmitter } from 'node:events';
import crypto from 'node:crypto';
import {
  ErrorCode, type AgentConfig, type AgentStatus, type HardwareState, type HostFacts, type NodeHardwareLiveMessage, type NodeStatusLiveMessage,
  type NodeUpdatedLiveMessage, type NodeView,
} from '@dvic/protocol';
import { ApiError } from '../errors.js';
import type { NodeRecord, NodeStatus, NodesRepository } from '../repositories/nodes-repository.js';
import { writeNow, type WriteScheduler } from '../services/deferred-writes.js';
import type { DemoRegistry } from './demo-registry.js';

export interface RegistryEvents {
  status: [{ node_id: string; status: NodeStatus; since: number; reason?: string }];
  hardware: [{ node_id: string; at: number; hardware: HardwareState }];
  updated: [NodeView];
}

/** A node reference (id prefix) must be at least this long, so a typo does not pick a node at random. */
const MIN_PREFIX = 4;

/**
 * The live state map: every node with its status and latest hardware, in memory. Reads are
 * synchronous, from memory; writes are asynchronous. Status changes are written through at once
 * (rare, and must survive a crash); hardware and last-seen times change every few seconds per
 * node, so they are flushed in one batch. A change an administrator asks for reaches memory (and
 * listeners) only once the database accepted it: after its transaction commits. When the disk
 * refuses a write of live state, memory stays right and the write waits (deferred writes, or the
 * next flush); changes an administrator asks for are written first and refused as a whole.
 *
 * Each kind of change has one `apply...` method that updates memory and tells listeners: the
 * same for a change made here and one made by another replica.
 */
export class NodeRegistry extends EventEmitter<RegistryEvents> {
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly dirty = new Set<string>();
  private readonly agentStatus = new Map<string, AgentStatus>();
  private flushTimer: NodeJS.Timeout | undefined;
  /** Reads of nodes not in memory (find), one per node at a time. */
  private readonly loading = new Map<string, Promise<NodeRecord | undefined>>();
  /** The last flush: flushes run one after the other, so a node's rows are written in order. */
  private flushing: Promise<void> = Promise.resolve();

  /** Other replicas change nodes in the same database (a lab's replicas on PostgreSQL): hellos are checked against the row. */
  private sharedDatabase = false;

  constructor(
    private readonly repository: NodesRepository,
    private readonly demos: DemoRegistry,
    private readonly flushIntervalMs: number,
    private readonly deferred: WriteScheduler = writeNow,
  ) {
    super();
    demos.on('changed', ({ node_id }) => this.announce(node_id));
  }

  /**
   * Reads the nodes from the database (once, before use). keepStatus: a replica of a lab sharing
   * the database leaves status to the replica holding each agent (the leader marks offline what
   * no replica holds).
   */
  async load(options: { keepStatus?: boolean; sharedDatabase?: boolean } = {}): Promise<this> {
    this.sharedDatabase = options.sharedDatabase ?? false;
    const now = Date.now();
    for (const node of await this.repository.all()) {
      // Nobody is connected to a server that just started: online nodes will come back on their own.
      if (node.status === 'online' && !options.keepStatus) {
        Object.assign(node, { status: 'offline', statusSince: node.lastSeen ?? now });
        this.writeStatus(node);
      }
      this.nodes.set(node.id, node);
    }
    return this;
  }

  start(): void {
    this.flushTimer = setInterval(() => void this.flush(), this.flushIntervalMs);
    this.flushTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.flushTimer);
    await this.flush();
  }

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  /**
   * A node from memory or, when this server has not seen it, from the database: in a scaled-out
   * lab another replica may have enrolled it after this one loaded. Kept in memory once found.
   */
  async find(id: string): Promise<NodeRecord | undefined> {
    const known = this.nodes.get(id);
    if (known) return known;
    let loading = this.loading.get(id);
    if (!loading) {
      loading = this.repository.get(id).then((node) => {
        if (node && !this.nodes.has(id)) this.nodes.set(id, node);
        return this.nodes.get(id);
      }).finally(() => this.loading.delete(id));
      this.loading.set(id, loading);
    }
    return loading;
  }

  /**
   * The node an agent's hello is verified against, from memory when this server alone changes
   * nodes; undefined when it must be read (forHello).
   */
  knownForHello(id: string): NodeRecord | undefined {
    return this.sharedDatabase ? undefined : this.nodes.get(id);
  }

  /**
   * The node an agent's hello is verified against, read from the database: on a database other
   * replicas share, one of them may have given the node a new key or revoked it a moment ago (one
   * primary-key read per hello). Memory takes the key and the revocation.
   */
  async forHello(id: string): Promise<NodeRecord | undefined> {
    if (!this.sharedDatabase) return this.find(id);
    const stored = await this.repository.get(id);
    if (!stored) return undefined;
    const known = this.nodes.get(id);
    if (!known) {
      this.nodes.set(id, stored);
      return stored;
    }
    known.publicKey = stored.publicKey;
    if (stored.revokedAt !== null && known.status !== 'revoked') {
      this.applyStatus(id, { status: 'revoked', statusSince: stored.statusSince, revokedAt: stored.revokedAt }, 'revoked by an administrator');
    }
    return known;
  }

  /**
   * A node by id, exact name, or unique id prefix. Unknown -> 404; a prefix several nodes share
   * -> 409 with the candidates, so the user can pick.
   */
  resolve(ref: string): NodeRecord {
    const exact = this.nodes.get(ref) ?? [...this.nodes.values()].find((n) => n.name === ref);
    if (exact) return exact;
    const prefix = ref.toLowerCase();
    const candidates = prefix.length >= MIN_PREFIX ? [...this.nodes.values()].filter((n) => n.id.startsWith(prefix)) : [];
    if (candidates.length === 1) return candidates[0]!;
    if (candidates.length === 0) throw new ApiError(404, ErrorCode.notFound, `no node "${ref}" (give its name, its id, or the start of its id)`);
    throw new ApiError(409, ErrorCode.ambiguous, `"${ref}" matches ${candidates.length} nodes: ${candidates.map((n) => n.name).join(', ')}`, {}, {
      candidates: candidates.map((n) => ({ id: n.id, name: n.name })),
    });
  }

  list(): NodeView[] {
    return [...this.nodes.values()].sort((a, b) => a.name.localeCompare(b.name)).map((n) => this.toView(n));
  }

  view(id: string): NodeView | undefined {
    const node = this.nodes.get(id);
    return node && this.toView(node);
  }

  async create(input: { name: string; labels?: Record<string, string>; publicKeyPem: string; isLocal?: boolean }): Promise<NodeView> {
    this.assertNameFree(input.name);
    const now = Date.now();
    const node: NodeRecord = {
      id: crypto.randomUUID(), name: input.name, labels: input.labels ?? {}, agentConfig: {}, publicKey: input.publicKeyPem,
      isLocal: input.isLocal ?? false, createdAt: now, revokedAt: null, status: 'offline', statusSince: now,
      lastSeen: null, agentVersion: null, host: null, hardware: null, hardwareAt: null,
    };
    await this.repository.insert(node);
    this.repository.afterCommit(() => this.applyNode(node));
    return this.toView(node);
  }

  async update(id: string, change: { name?: string; labels?: Record<string, string> }): Promise<NodeView> {
    const node = this.mustGet(id);
    if (change.name !== undefined && change.name !== node.name) this.assertNameFree(change.name);
    const next = { ...node, name: change.name ?? node.name, labels: change.labels ?? node.labels };
    await this.repository.updateIdentity(id, next.name, next.labels);
    this.repository.afterCommit(() => this.applyNode(next));
    return this.toView(next);
  }

  /** Merges settings into the node's agent configuration and returns the result. */
  async updateAgentConfig(id: string, change: AgentConfig): Promise<AgentConfig> {
    const node = this.mustGet(id);
    const agentConfig = { ...node.agentConfig, ...change };
    await this.repository.updateAgentConfig(id, agentConfig);
    this.repository.afterCommit(() => this.applyNode({ ...node, agentConfig }));
    return agentConfig;
  }

  /** Runs fn once the current transaction (if any) commits, like the registry's own changes. */
  afterCommit(fn: () => void): void {
    this.repository.afterCommit(fn);
  }

  /** Announces a node again, e.g. after its demo counts changed. */
  announce(id: string): void {
    const node = this.nodes.get(id);
    if (node) this.emit('updated', this.toView(node));
  }

  /** Gives a node a new key (its old private key stops working at once). */
  async replaceKey(id: string, publicKeyPem: string): Promise<void> {
    this.mustGet(id);
    await this.repository.updatePublicKey(id, publicKeyPem);
    this.repository.afterCommit(() => this.applyKey(id, publicKeyPem));
  }

  async revoke(id: string): Promise<NodeView> {
    const node = this.mustGet(id);
    if (node.status === 'revoked') return this.toView(node);
    const now = Date.now();
    const next = { ...node, status: 'revoked' as const, statusSince: now, revokedAt: now };
    await this.repository.updateStatus(next);
    this.repository.afterCommit(() => this.applyStatus(id, { status: 'revoked', statusSince: now, revokedAt: now }, 'revoked by an administrator'));
    return this.toView(next);
  }

  /**
   * A node created, renamed, relabelled or given new agent settings (here or on another replica):
   * memory takes its identity and settings (its live state stays as this replica knows it).
   */
  applyNode(node: NodeRecord): void {
    const known = this.nodes.get(node.id);
    if (known) Object.assign(known, { name: node.name, labels: node.labels, agentConfig: node.agentConfig });
    else this.nodes.set(node.id, node);
    this.emit('updated', this.toView(known ?? node));
  }

  /** A node's new public key (here or on another replica). */
  applyKey(id: string, publicKeyPem: string): void {
    const node = this.nodes.get(id);
    if (node) node.publicKey = publicKeyPem;
  }

  /** A node's status changed (here or on another replica): memory follows, listeners hear it. */
  applyStatus(id: string, change: Pick<NodeRecord, 'status' | 'statusSince'> & Partial<Pick<NodeRecord, 'revokedAt'>>, reason?: string): void {
    const node = this.nodes.get(id);
    if (!node) return;
    Object.assign(node, change);
    this.emit('status', { node_id: id, status: change.status, since: change.statusSince, ...(reason ? { reason } : {}) });
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

  /**
   * Another replica's change of a node (cluster/remote-state.ts): it wrote the database, so this is
   * memory only. Status and hardware are told to listeners (the alert engine, if this replica leads);
   * a whole view is not (the demo catalog would make demo rows of its own from it). False for a
   * node unknown here.
   */
  applyRemote(message: NodeStatusLiveMessage | NodeHardwareLiveMessage | NodeUpdatedLiveMessage): boolean {
    const node = this.nodes.get(message.type === 'node.updated' ? message.data.node.id : message.data.node_id);
    if (!node) return false;
    if (message.type === 'node.status') {
      const { status, since } = message.data;
      Object.assign(node, { status, statusSince: since }, status === 'revoked' ? { revokedAt: since } : {});
      this.emit('status', message.data);
    } else if (message.type === 'node.hardware') {
      Object.assign(node, { hardware: message.data.hardware, hardwareAt: message.data.at, lastSeen: message.data.at });
      this.emit('hardware', message.data);
    } else {
      const v = message.data.node;
      Object.assign(node, {
        name: v.name, labels: v.labels, agentConfig: v.agent_config, status: v.status, statusSince: v.status_since, lastSeen: v.last_seen,
        agentVersion: v.agent_version, host: v.host, hardware: v.hardware, hardwareAt: v.hardware_at, revokedAt: v.revoked_at,
      });
      if (v.agent_status) this.agentStatus.set(v.id, v.agent_status);
    }
    return true;
  }

  /**
   * Writes pending hardware and last-seen changes, one statement for all rows; kept for the next
   * flush when the disk refuses it. A failure is reported (a test's writeNow rethrows it).
   */
  flush(): Promise<void> {
    const flush = this.flushing.then(() => this.writeLiveState());
    this.flushing = flush.catch(() => undefined);
    return flush;
  }

  private async writeLiveState(): Promise<void> {
    if (this.dirty.size === 0) return;
    const ids = [...this.dirty];
    this.dirty.clear();
    try {
      await this.repository.flushLiveState(ids.flatMap((id) => this.nodes.get(id) ?? []));
    } catch (err) {
      for (const id of ids) this.dirty.add(id);
      this.deferred.report(err, "storing the nodes' live state (hardware, last seen)");
    }
  }

  /** Writes the node's status as it is in memory when the write runs (now, or once the disk has room). */
  private writeStatus(node: NodeRecord): void {
    this.deferred.background(`node-status:${node.id}`, () => this.repository.updateStatus(node));
  }

  private setStatus(node: NodeRecord, status: NodeStatus, reason?: string): void {
    this.applyStatus(node.id, { status, statusSince: Date.now() }, reason);
    this.writeStatus(node);
  }

  private mustGet(id: string): NodeRecord {
    const node = this.nodes.get(id);
    if (!node) throw new ApiError(404, ErrorCode.notFound, `node ${id} not found`);
    return node;
  }

  private assertNameFree(name: string): void {
    for (const node of this.nodes.values()) {
      if (node.name === name) throw new ApiError(409, ErrorCode.conflict, `a node named "${name}" already exists`);
    }
  }

  private toView(n: NodeRecord): NodeView {
    return {
      id: n.id, name: n.name, labels: n.labels, agent_config: n.agentConfig, status: n.status, status_since: n.statusSince, last_seen: n.lastSeen,
      agent_version: n.agentVersion, is_local: n.isLocal, created_at: n.createdAt, revoked_at: n.revokedAt,
      host: n.host, hardware: n.hardware, hardware_at: n.hardwareAt, demo_summary: this.demos.summary(n.id),
      agent_status: this.agentStatus.get(n.id) ?? null,
    };
  }
}
