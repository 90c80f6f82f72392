import { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import type { KvEntry, NatsConnection, QueuedIterator } from 'nats';
import type { NodeClaim } from '@dvic/protocol';
import type { ClusterNames } from './cluster-names.js';
import { ClusterSchema, decodeWire } from './cluster-wire.js';
import { openHoldersBucket } from './node-holders.js';

/** A node whose agent another replica holds, as this replica last saw its claim. */
export interface RemoteNode {
  replica: string;
  capabilities: readonly string[];
  /** When the claim was last written (claimed or renewed): it is gone a lease after. */
  seenAt: number;
  /** A send to its holder found nobody listening: the holder died, its claim not expired yet. */
  unreachable: boolean;
}

export interface RemoteHoldersEvents {
  /** Another replica took the node, left it (before set, after undefined), or handed it to a third one. */
  changed: [nodeId: string, before: RemoteNode | undefined, after: RemoteNode | undefined];
}

export interface RemoteHoldersOptions {
  replica: string;
  leaseMs: number;
  log: FastifyBaseLogger;
}

/** After the watch ends (NATS away, bucket made again), it starts again after this. */
const REWATCH_MS = 1000;

/**
 * The nodes other replicas hold, followed from the node-holder bucket (a KV watch: every claim,
 * renewal and release as it happens). Claims expire with the bucket's max age without any event
 * on the watch, so a claim not renewed within the lease (its replica died or was cut off) is
 * dropped here by a sweep: what a replica shows as online elsewhere is gone at most a lease
 * after its holder stopped.
 */
export class RemoteHolders extends EventEmitter<RemoteHoldersEvents> {
  private readonly nodes = new Map<string, RemoteNode>();
  private readonly sweepTimer: NodeJS.Timeout;
  private watch: QueuedIterator<KvEntry> | undefined;
  private closed = false;
  private readonly watching: Promise<void>;

  constructor(private readonly nc: NatsConnection, private readonly names: ClusterNames, private readonly options: RemoteHoldersOptions) {
    super();
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), Math.max(100, options.leaseMs / 4));
    this.sweepTimer.unref();
    this.watching = this.watchLoop();
  }

  get(nodeId: string): RemoteNode | undefined {
    return this.nodes.get(nodeId);
  }

  /** Its holder did not answer (no responder): sends to it fail at once until it renews a claim again. */
  markUnreachable(replica: string): void {
    for (const node of this.nodes.values()) if (node.replica === replica) node.unreachable = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.watch?.stop();
    await this.watching;
  }

  private async watchLoop(): Promise<void> {
    while (!this.closed) {
      try {
        const kv = await openHoldersBucket(this.nc, this.names, this.options.leaseMs);
        if (this.closed) return;
        this.watch = await kv.watch();
        for await (const entry of this.watch) this.onEntry(entry);
      } catch (err) {
        if (!this.closed) this.options.log.warn({ err: (err as Error).message }, 'watching the node holders failed: watching again');
      }
      if (!this.closed) await new Promise((resolve) => setTimeout(resolve, REWATCH_MS).unref());
    }
  }

  private onEntry(entry: KvEntry): void {
    const before = this.nodes.get(entry.key);
    if (entry.operation !== 'PUT') return this.drop(entry.key, before);
    let claim: NodeClaim;
    try {
      claim = decodeWire<NodeClaim>(ClusterSchema.nodeClaim, entry.value);
    } catch (err) {
      this.options.log.warn({ nodeId: entry.key.slice(0, 64), err: (err as Error).message }, 'a node claim that is not one: ignored');
      return;
    }
    // This replica's own claims: its agent hub says which nodes it holds.
    if (claim.replica === this.options.replica) return this.drop(entry.key, before);
    const after: RemoteNode = { replica: claim.replica, capabilities: claim.capabilities ?? [], seenAt: Date.now(), unreachable: false };
    this.nodes.set(entry.key, after);
    if (before?.replica !== after.replica) this.emit('changed', entry.key, before, after);
  }

  private drop(nodeId: string, before: RemoteNode | undefined): void {
    if (!before) return;
    this.nodes.delete(nodeId);
    this.emit('changed', nodeId, before, undefined);
  }

  private sweep(now: number): void {
    for (const [nodeId, node] of [...this.nodes]) {
      if (now - node.seenAt > this.options.leaseMs) this.drop(nodeId, node);
    }
  }
}
