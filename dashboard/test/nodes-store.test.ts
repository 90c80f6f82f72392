import { describe, expect, it } from 'vitest';
import { bytes, duration, level, percent } from '../src/format.js';
import { applyLive, emptyState, HISTORY_POINTS, visibleNodes } from '../src/state/nodes-store.js';
import { metric } from '../src/views/overview-metric.js';

const hw = (cpu: number, temp?: number) => ({
  ts: 0, interval_s: 5, host: { hostname: 'h', os: '', kernel: '', arch: '', boot_id: '', agent_version: '' }, uptime_s: 10,
  cpu: { total_pct: cpu, per_core_pct: [cpu] }, load: { load1: 0, load5: 0, load15: 0 },
  memory: { total_bytes: 100, available_bytes: 50, used_bytes: 50, swap_total_bytes: 0, swap_used_bytes: 0 },
  filesystems: [], temperatures: temp === undefined ? [] : [{ sensor: 't', source: 'thermal' as const, celsius: temp }], processes: 1, network: [],
});
const node = (id: string, name: string, extra: object = {}) => ({
  id, name, labels: {}, status: 'online', status_since: 0, last_seen: 0, agent_version: '1', is_local: false, host: null,
  hardware: hw(10, 40), hardware_at: 0, demo_summary: { total: 0, alive: 0 }, ...extra,
});

describe('nodes store', () => {
  it('replaces only the entries that changed, so other rows keep their identity', () => {
    const s1 = applyLive(emptyState(), [{ type: 'snapshot', data: { nodes: [node('a', 'alpha'), node('b', 'beta')] } }]);
    const s2 = applyLive(s1, [{ type: 'node.hardware', data: { node_id: 'a', at: 5, hardware: hw(90, 70) } }]);
    expect(s2.byId.get('b')).toBe(s1.byId.get('b'));
    expect(s2.byId.get('a')).not.toBe(s1.byId.get('a'));
    expect(s2.byId.get('a')!.node.hardware!.cpu.total_pct).toBe(90);
    expect(s2.byId.get('a')!.cpu).toEqual([10, 90]);
    expect(s2.byId.get('a')!.temp).toEqual([40, 70]);
    expect(s2.version).toBe(s1.version + 1);
  });

  it('applies status changes and ignores messages about unknown nodes', () => {
    const s1 = applyLive(emptyState(), [{ type: 'snapshot', data: { nodes: [node('a', 'alpha')] } }]);
    const s2 = applyLive(s1, [{ type: 'node.status', data: { node_id: 'a', status: 'offline', since: 99 } }, { type: 'node.hardware', data: { node_id: 'zzz', at: 1, hardware: hw(1) } }]);
    expect(s2.byId.get('a')!.node).toMatchObject({ status: 'offline', status_since: 99 });
    expect(applyLive(s2, [{ type: 'node.status', data: { node_id: 'nope', status: 'offline', since: 1 } }])).toBe(s2);
  });

  it('keeps at most HISTORY_POINTS samples per node', () => {
    let s = applyLive(emptyState(), [{ type: 'snapshot', data: { nodes: [node('a', 'alpha')] } }]);
    for (let i = 0; i < HISTORY_POINTS + 20; i++) s = applyLive(s, [{ type: 'node.hardware', data: { node_id: 'a', at: i, hardware: hw(i) } }]);
    expect(s.byId.get('a')!.cpu).toHaveLength(HISTORY_POINTS);
    expect(s.byId.get('a')!.cpu.at(-1)).toBe(HISTORY_POINTS + 19);
  });

  it('filters by status, label and text, and sorts by the chosen metric', () => {
    const s = applyLive(emptyState(), [{ type: 'snapshot', data: { nodes: [
      node('a', 'alpha', { labels: { room: 'hall' }, hardware: hw(20) }), node('b', 'beta', { status: 'offline' }), node('c', 'gamma', { labels: { room: 'lab' }, hardware: hw(80) }),
    ] } }]);
    const names = (f: object, sort: 'name' | 'cpu' | 'status' = 'name') => visibleNodes(s, { status: 'all', label: '', text: '', ...f }, sort, metric).map((e) => e.node.name);
    expect(names({})).toEqual(['alpha', 'beta', 'gamma']);
    expect(names({ status: 'offline' })).toEqual(['beta']);
    expect(names({ label: 'room=hall' })).toEqual(['alpha']);
    expect(names({ label: 'room' })).toEqual(['alpha', 'gamma']);
    expect(names({ text: 'GAM' })).toEqual(['gamma']);
    expect(names({}, 'cpu')).toEqual(['gamma', 'alpha', 'beta']);
    expect(names({}, 'status')).toEqual(['beta', 'alpha', 'gamma']);
  });
});

describe('format', () => {
  it('formats durations, bytes and percentages', () => {
    expect([duration(59_000), duration(61_000), duration(3_660_000), duration(90_000_000)]).toEqual(['59s', '1m', '1h 1m', '1d 1h']);
    expect([bytes(512), bytes(2048), bytes(5 * 1024 ** 3)]).toEqual(['512 B', '2.0 KiB', '5.0 GiB']);
    expect([percent(49.6), percent(null)]).toEqual(['50%', '–']);
    expect([level(50, 70, 90), level(75, 70, 90), level(95, 70, 90), level(null, 1, 2)]).toEqual(['ok', 'warn', 'bad', 'none']);
  });
});
