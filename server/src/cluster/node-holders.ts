import { StorageType, type KV, type NatsConnection } from 'nats';
import type { NodeClaim } from '@dvic/protocol';
import type { ClusterNames } from './cluster-names.js';
import { checkReplicaId } from './cluster-names.js';
import { checkNodeId, ClusterSchema, decodeWire, encodeWire } from './cluster-wire.js';

export interface NodeHoldersOptions {
  /** This replica. */
  replica: string;
  /** How long a claim lives without renewal: a dead replica's nodes are free after this. */
  leaseMs: number;
  /** A node this replica held was claimed by another replica (its agent reconnected there). */
  onLost?: (nodeId: string) => void;
}

interface Held { claim: NodeClaim; revision: number }

const RENEWALS_IN_FLIGHT = 512;

/** Creates the bucket, or binds to it when another replica made it (the same settings on every replica). */
export function openHoldersBucket(nc: NatsConnection, names: ClusterNames, leaseMs: number): Promise<KV> {
  // KV answers wait a third of the lease (a renewal period), at least 2 s (a loaded machine), at most 5 s.
  const timeout = Math.min(5000, Math.max(2000, leaseMs / 3));
  return nc.jetstream({ timeout }).views.kv(names.holdersBucket, { ttl: leaseMs, history: 1, storage: StorageType.Memory, timeout });
}

/**
 * Which replica holds which node's agent connection, in a NATS KV bucket whose max age is the
 * lease. A replica claims a node when its agent connects (the newest connection wins: the agent
 * holds one connection at a time), rewrites its claims every third of the lease, and releases
 * a node when its agent leaves. A replica that dies stops renewing: its claims expire with it.
 * The bucket is in memory: after a NATS restart the next renewal writes every claim again.
 */
export class NodeHolders {
  private readonly held = new Map<string, Held>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private renewing: Promise<void> = Promise.resolve();
  private failedLastRound = false;

  private constructor(private kv: KV, private readonly openBucket: () => Promise<KV>, private readonly options: NodeHoldersOptions) {}

  static async open(nc: NatsConnection, names: ClusterNames, options: NodeHoldersOptions): Promise<NodeHolders> {
    checkReplicaId(options.replica);
    const openBucket = () => openHoldersBucket(nc, names, options.leaseMs);
    const holders = new NodeHolders(await openBucket(), openBucket, options);
    holders.schedule();
    return holders;
  }

  /**
   * This replica now holds the node's agent (with the capabilities its hello announced, for the
   * other replicas to see). The node counts as held at once: when the write
   * fails (NATS unreachable) the error is thrown and the next renewal writes the claim.
   */
  async claim(nodeId: string, capabilities?: readonly string[]): Promise<void> {
    const claim: NodeClaim = { replica: this.options.replica, claimed_at: Date.now(), ...(capabilities ? { capabilities: [...capabilities] } : {}) };
    const held: Held = { claim, revision: 0 };
    this.held.set(checkNodeId(nodeId), held);
    held.revision = await this.kv.put(nodeId, encodeWire(held.claim));
  }

  /** The node's agent left this replica. A claim taken over since by another replica stays. */
  async release(nodeId: string): Promise<void> {
    const mine = this.held.get(checkNodeId(nodeId));
    if (!mine) return;
    this.held.delete(nodeId);
    try {
      await this.kv.delete(nodeId, { previousSeq: mine.revision });
    } catch {
      // Not our claim any more (taken over, or expired and claimed again): not ours to delete.
    }
  }

  /** The replica holding the node, or null when no live replica does. */
  async holder(nodeId: string): Promise<NodeClaim | null> {
    const entry = await this.kv.get(checkNodeId(nodeId));
    if (!entry || entry.operation !== 'PUT') return null;
    return decodeWire<NodeClaim>(ClusterSchema.nodeClaim, entry.value);
  }

  /** Nodes this replica believes it holds (what it renews). */
  holds(nodeId: string): boolean {
    return this.held.has(nodeId);
  }

  get heldCount(): number {
    return this.held.size;
  }

  /** Rewrites every claim now (the timer does it every third of the lease). */
  renew(): Promise<void> {
    this.renewing = this.renewing.then(() => this.renewAll());
    return this.renewing;
  }

  /** Stops renewing. Claims are left to expire: release() nodes first for an orderly stop. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.renew().finally(() => this.schedule()), this.options.leaseMs / 3);
  }

  /** A bounded number at a time: 20,000 nodes must not mean 20,000 requests in flight. */
  private async renewAll(): Promise<void> {
    if (this.failedLastRound) {
      // A restarted NATS lost the in-memory bucket: make it again (a no-op when it is there).
      this.kv = await this.openBucket().catch(() => this.kv);
    }
    let failed = false;
    const all = [...this.held];
    for (let i = 0; i < all.length; i += RENEWALS_IN_FLIGHT) {
      await Promise.all(all.slice(i, i + RENEWALS_IN_FLIGHT).map(([nodeId, held]) => this.renewOne(nodeId, held).catch(() => { failed = true; })));
    }
    this.failedLastRound = failed;
  }

  /** Compare-and-set on our last revision; when that fails, someone else's claim wins, else ours is written again. */
  private async renewOne(nodeId: string, held: Held): Promise<void> {
    try {
      held.revision = await this.kv.update(nodeId, encodeWire(held.claim), held.revision);
      return;
    } catch {
      // Taken over, or expired (the replica was paused longer than the lease): look.
    }
    const current = await this.holder(nodeId);
    if (this.held.get(nodeId) !== held) return; // released or claimed again meanwhile
    if (current && current.replica !== this.options.replica) {
      this.held.delete(nodeId);
      this.options.onLost?.(nodeId);
      return;
    }
    held.revision = await this.kv.put(nodeId, encodeWire(held.claim));
  }
}
