import { describe, expect, it } from 'vitest';
import { ChannelMap, MAX_MAPPED_PER_NODE } from '../../src/cluster/channel-map.js';

const NODE = '0a1b2c3d-0000-4000-8000-000000000001';
const OTHER_NODE = '0a1b2c3d-0000-4000-8000-000000000002';

describe('channel map of a holding replica', () => {
  it('gives two replicas that both use channel 1 two local channels, and says whose each is', () => {
    const map = new ChannelMap();
    const fromB = map.toLocal(NODE, 'replica-b', 'terminal', 1)!;
    const fromC = map.toLocal(NODE, 'replica-c', 'terminal', 1)!;
    expect(fromB).not.toBe(fromC);
    expect(map.toLocal(NODE, 'replica-b', 'terminal', 1)).toBe(fromB); // the same stream keeps its channel
    expect(map.fromLocal(NODE, fromB)).toMatchObject({ origin: 'replica-b', channel: 1, space: 'terminal' });
    expect(map.fromLocal(NODE, fromC)).toMatchObject({ origin: 'replica-c', channel: 1 });
    // The holder's own channels (counted from 1, tunnels from 0x8000_0000) are not anyone else's.
    expect(map.fromLocal(NODE, 1)).toBeUndefined();
    expect(map.fromLocal(NODE, 0x8000_0000)).toBeUndefined();
    expect(map.fromLocal(OTHER_NODE, fromB)).toBeUndefined();
  });

  it('keeps terminal and artifact channels below the tunnel half, tunnels in it, away from the holder own ranges', () => {
    const map = new ChannelMap();
    const terminal = map.toLocal(NODE, 'b', 'terminal', 7)!;
    const artifact = map.toLocal(NODE, 'b', 'artifact', 7)!;
    const tunnel = map.toLocal(NODE, 'b', 'tunnel', 0x8000_0001)!;
    for (const low of [terminal, artifact]) expect(low >= 0x4000_0000 && low < 0x8000_0000).toBe(true);
    expect(terminal).not.toBe(artifact);
    expect(tunnel >= 0xc000_0000 && tunnel <= 0xffff_ffff).toBe(true);
  });

  it('frees a channel when its stream ends, and all of a node when its agent leaves', () => {
    const map = new ChannelMap();
    const first = map.toLocal(NODE, 'b', 'terminal', 1)!;
    const second = map.toLocal(NODE, 'b', 'terminal', 2)!;
    map.toLocal(OTHER_NODE, 'b', 'terminal', 1);
    map.release(NODE, first);
    expect(map.fromLocal(NODE, first)).toBeUndefined();
    expect(map.fromLocal(NODE, second)).toBeDefined();
    map.forgetNode(NODE);
    expect(map.fromLocal(NODE, second)).toBeUndefined();
    expect(map.size).toBe(1);
  });

  it('forgets streams idle past the limit (their end was lost with a replica)', () => {
    const map = new ChannelMap();
    const old = map.toLocal(NODE, 'b', 'terminal', 1, 1000)!;
    const recent = map.toLocal(NODE, 'b', 'terminal', 2, 1000)!;
    map.fromLocal(NODE, recent, 9000);
    map.sweep(10_000, 5000);
    expect(map.fromLocal(NODE, old)).toBeUndefined();
    expect(map.fromLocal(NODE, recent)).toBeDefined();
  });

  it('refuses more streams than a node may have for other replicas', () => {
    const map = new ChannelMap();
    for (let channel = 1; channel <= MAX_MAPPED_PER_NODE; channel++) expect(map.toLocal(NODE, 'b', 'terminal', channel)).not.toBeNull();
    expect(map.toLocal(NODE, 'b', 'terminal', MAX_MAPPED_PER_NODE + 1)).toBeNull();
    expect(map.toLocal(OTHER_NODE, 'b', 'terminal', 1)).not.toBeNull();
  });
});
