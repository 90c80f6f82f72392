import { describe, expect, it } from 'vitest';
import type { DemoView, LiveMessage, NodeDemosLiveMessage, NodeView } from '@dvic/protocol/shared';
import { level } from '../src/format.js';
import { withToldDemos } from '../src/state/node-demos.js';
import { applyLive, emptyState, HISTORY_POINTS, visibleNodes } from '../src/state/nodes-store.js';
import { metric } from '../src/views/overview-metric.js';
import { demo, hardware as hw, node, serverStatus } from '../../protocol/test/fixtures.js';

const snapshot = (nodes: NodeView[]): LiveMessage => ({ type: 'snapshot', data: { nodes, server: serverStatus() } });

describe('nodes store', () => {
  it('replaces only the entries that changed, so other rows keep their identity', () => {
    const s1 = applyLive(emptyState(), [snapshot([node('a', 'alpha'), node('b', 'beta')])]);
    const s2 = applyLive(s1, [{ type: 'node.hardware', data: { node_id: 'a', at: 5, hardware: hw(90, 70) } }]);
    expect(s2.byId.get('b')).toBe(s1.byId.get('b'));
    expect(s2.byId.get('a')).not.toBe(s1.byId.get('a'));
    expect(s2.byId.get('a')!.node.hardware!.cpu.total_pct).toBe(90);
    expect(s2.byId.get('a')!.cpu).toEqual([10, 90]);
    expect(s2.byId.get('a')!.temp).toEqual([40, 70]);
    expect(s2.version).toBe(s1.version + 1);
  });

  it('applies status changes and ignores messages about unknown nodes', () => {
    const s1 = applyLive(emptyState(), [snapshot([node('a', 'alpha')])]);
    const s2 = applyLive(s1, [{ type: 'node.status', data: { node_id: 'a', status: 'offline', since: 99 } }, { type: 'node.hardware', data: { node_id: 'zzz', at: 1, hardware: hw(1) } }]);
    expect(s2.byId.get('a')!.node).toMatchObject({ status: 'offline', status_since: 99 });
    expect(applyLive(s2, [{ type: 'node.status', data: { node_id: 'nope', status: 'offline', since: 1 } }])).toBe(s2);
  });

  it('lays the demo runs told live over the whole list, never in place of it', () => {
    const [kiosk, spoof, old] = [demo({ token: 'kiosk', demo: 'kiosk' }), demo({ token: 'spoof', demo: 'spoof', trusted: false }), demo({ token: 'old', demo: 'old', alive: false })];
    const page = { id: 'a', demos: [{ ...kiosk, line_count: 3 }, spoof, old] };
    const told = (nodeId: string, demos: DemoView[], removed?: string[]): NodeDemosLiveMessage => ({ type: 'node.demos', data: { node_id: nodeId, demos, ...(removed ? { removed } : {}) } });
    // A run writing lines is told alone: the other runs stay (the page showed only it before).
    const after = withToldDemos(page, told('a', [{ ...kiosk, line_count: 7 }], ['old']));
    expect(after.demos.map((d) => [d.token, d.line_count])).toEqual([['kiosk', 7], ['spoof', 0]]);
    expect(withToldDemos(page, told('b', [{ ...kiosk, line_count: 9 }]))).toBe(page);
    // The nodes store itself keeps no demo list: none it could show would be whole.
    const s1 = applyLive(emptyState(), [snapshot([node('a', 'alpha')])]);
    expect(applyLive(s1, [told('a', [kiosk])])).toBe(s1);
  });

  it('forgets a removed node', () => {
    const s1 = applyLive(emptyState(), [snapshot([node('a', 'alpha'), node('b', 'beta')])]);
    const s2 = applyLive(s1, [{ type: 'node.removed', data: { node_id: 'a' } }]);
    expect([...s2.byId.keys()]).toEqual(['b']);
  });

  it('keeps the server status of the snapshot until a server.status changes it, without touching the nodes', () => {
    const s1 = applyLive(emptyState(), [snapshot([node('a', 'alpha')])]);
    expect(s1.server?.storage.state).toBe('ok');
    const s2 = applyLive(s1, [{ type: 'server.status', data: serverStatus('full') }]);
    expect(s2.server?.storage.state).toBe('full');
    expect([s2.byId, s2.version]).toEqual([s1.byId, s1.version]);
  });

  it('keeps at most HISTORY_POINTS samples per node', () => {
    let s = applyLive(emptyState(), [snapshot([node('a', 'alpha')])]);
    for (let i = 0; i < HISTORY_POINTS + 20; i++) s = applyLive(s, [{ type: 'node.hardware', data: { node_id: 'a', at: i, hardware: hw(i) } }]);
    expect(s.byId.get('a')!.cpu).toHaveLength(HISTORY_POINTS);
    expect(s.byId.get('a')!.cpu.at(-1)).toBe(HISTORY_POINTS + 19);
  });

  it('filters by status, label and text, and sorts by the chosen metric', () => {
    const s = applyLive(emptyState(), [snapshot([
      node('a', 'alpha', { labels: { room: 'hall' }, hardware: hw(20) }), node('b', 'beta', { status: 'offline' }), node('c', 'gamma', { labels: { room: 'lab' }, hardware: hw(80) }),
    ])]);
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
  it('colours a value by its severity', () => {
    expect([level(50, 70, 90), level(75, 70, 90), level(95, 70, 90), level(null, 1, 2)]).toEqual(['ok', 'warn', 'bad', 'none']);
  });
});
