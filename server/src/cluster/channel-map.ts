/**
 * What a channel carries: terminal and tunnel channels come back from the agent (their frames
 * and close messages); artifact channels only go to it (artifactChunk frames of a deploy).
 */
export type ChannelSpace = 'terminal' | 'tunnel' | 'artifact';

export interface MappedChannel {
  origin: string;
  space: ChannelSpace;
  /** The channel as the origin replica's service knows it. */
  channel: number;
  /** The channel as this replica's connection to the agent carries it. */
  local: number;
  usedAt: number;
}

/**
 * Local channels of other replicas' streams come from ranges this replica's own services never
 * reach in practice: they count up from 1 (terminals, artifacts) and from 0x8000_0000 (tunnels),
 * one per stream opened, so a billion streams would have to be opened on one replica first.
 * Tunnels keep the upper half, as the agent's tunnel channels do.
 */
const RANGES: Record<'low' | 'high', { first: number; last: number }> = {
  low: { first: 0x4000_0000, last: 0x7fff_ffff },
  high: { first: 0xc000_0000, last: 0xffff_ffff },
};

/** Streams one node may have open for other replicas: past it, a new one is refused. */
export const MAX_MAPPED_PER_NODE = 1024;

/**
 * Each replica numbers its terminals, tunnels and artifact transfers on its own, so two replicas
 * talking to one agent may both use channel 1. The holder gives every other replica's channel a
 * channel of its own on the agent's connection (per node, per origin, per space), and translates
 * back what the agent sends on it, which also says which replica it is for.
 */
export class ChannelMap {
  private readonly byOrigin = new Map<string, MappedChannel>();
  private readonly byLocal = new Map<string, MappedChannel>();
  private readonly countByNode = new Map<string, number>();
  private readonly next = { low: RANGES.low.first, high: RANGES.high.first };

  /** The local channel for an origin's channel (made on first use); null when the node has too many. */
  toLocal(nodeId: string, origin: string, space: ChannelSpace, channel: number, now = Date.now()): number | null {
    const known = this.byOrigin.get(originKey(nodeId, origin, space, channel));
    if (known) {
      known.usedAt = now;
      return known.local;
    }
    const count = this.countByNode.get(nodeId) ?? 0;
    if (count >= MAX_MAPPED_PER_NODE) return null;
    const mapped: MappedChannel = { origin, space, channel, local: this.allocate(nodeId, space === 'tunnel' ? 'high' : 'low'), usedAt: now };
    this.byOrigin.set(originKey(nodeId, origin, space, channel), mapped);
    this.byLocal.set(localKey(nodeId, mapped.local), mapped);
    this.countByNode.set(nodeId, count + 1);
    return mapped.local;
  }

  /** Whose channel a local one is, or undefined when it is one of this replica's own. */
  fromLocal(nodeId: string, local: number, now = Date.now()): MappedChannel | undefined {
    const mapped = this.byLocal.get(localKey(nodeId, local));
    if (mapped) mapped.usedAt = now;
    return mapped;
  }

  /** The stream ended (closed by either side). */
  release(nodeId: string, local: number): void {
    const mapped = this.byLocal.get(localKey(nodeId, local));
    if (!mapped) return;
    this.byLocal.delete(localKey(nodeId, local));
    this.byOrigin.delete(originKey(nodeId, mapped.origin, mapped.space, mapped.channel));
    const count = (this.countByNode.get(nodeId) ?? 1) - 1;
    if (count > 0) this.countByNode.set(nodeId, count);
    else this.countByNode.delete(nodeId);
  }

  /** The agent's connection ended: its channels with it. */
  forgetNode(nodeId: string): void {
    for (const [key, mapped] of [...this.byLocal]) if (key.startsWith(`${nodeId}|`)) this.release(nodeId, mapped.local);
  }

  /** Streams nobody used for idleMs (their close was lost with a replica) are forgotten. */
  sweep(now: number, idleMs: number): void {
    for (const [key, mapped] of [...this.byLocal]) {
      if (now - mapped.usedAt > idleMs) this.release(key.slice(0, key.indexOf('|')), mapped.local);
    }
  }

  get size(): number {
    return this.byLocal.size;
  }

  private allocate(nodeId: string, range: 'low' | 'high'): number {
    for (;;) {
      const local = this.next[range];
      this.next[range] = local >= RANGES[range].last ? RANGES[range].first : local + 1;
      if (!this.byLocal.has(localKey(nodeId, local))) return local;
    }
  }
}

const originKey = (nodeId: string, origin: string, space: ChannelSpace, channel: number) => `${nodeId}|${origin}|${space}|${channel}`;
const localKey = (nodeId: string, local: number) => `${nodeId}|${local}`;
