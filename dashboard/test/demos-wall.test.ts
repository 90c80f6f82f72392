import { describe, expect, it } from 'vitest';
import type { LiveMessage } from '@dvic/protocol/shared';
import { applyDemoMessages, emptyDemos, healthCounts, visibleDemos, withFetched } from '../src/state/demos-store.js';
import { tileLayout, wallProblems, wallSummary } from '../src/state/wall.js';
import { device, hardware, labDemo, node } from '../../protocol/test/fixtures.js';

const updated = (...demos: ReturnType<typeof labDemo>[]): LiveMessage => ({ type: 'demo.updated', data: { demos } });

describe('demos store', () => {
  it('takes the fetched list, replays what came meanwhile, and applies updates and removals', () => {
    const s1 = withFetched([labDemo('a', 'kiosk'), labDemo('b', 'robot')], [updated(labDemo('a', 'kiosk', { state: 'crashed' }))]);
    expect(s1.byId.get('a')!.state).toBe('crashed');
    const s2 = applyDemoMessages(s1, [{ type: 'demo.removed', data: { ids: ['b'] } }]);
    expect([...s2.byId.keys()]).toEqual(['a']);
    expect(s2.version).toBe(s1.version + 1);
    expect(applyDemoMessages(s2, [{ type: 'node.removed', data: { node_id: 'x' } }])).toBe(s2);
    expect(emptyDemos().loaded).toBe(false);
  });

  it('lists problems first and filters by state, label and text', () => {
    const nodes = new Map([['n1', { name: 'hall-pi', labels: { room: 'hall' } }], ['n2', { name: 'lab-pi', labels: { room: 'lab' } }]]);
    const state = withFetched([
      labDemo('1', 'alpha'), labDemo('2', 'beta', { down: true, expected: true, state: 'crashed' }),
      labDemo('3', 'gamma', { node_id: 'n2', state: 'stopped' }), labDemo('4', 'delta', { crash_loop: true, state: 'restarting' }),
    ], []);
    const names = (health: Parameters<typeof visibleDemos>[1]['health'], label = '', text = '') => visibleDemos(state, { health, label, text }, (id) => nodes.get(id)).map((d) => d.name);
    expect(names('all')).toEqual(['beta', 'delta', 'alpha', 'gamma']);
    expect(names('problems')).toEqual(['beta', 'delta']);
    expect(names('stopped')).toEqual(['gamma']);
    expect(names('all', 'room=lab')).toEqual(['gamma']);
    expect(names('all', '', 'hall')).toEqual(['beta', 'delta', 'alpha']);
    expect(healthCounts(state.byId.values())).toMatchObject({ down: 1, 'crash-loop': 1, running: 1, stopped: 1 });
  });
});

describe('wall', () => {
  it('shows down demos, crashes, offline nodes, hot and full machines; never a revoked node or its demos', () => {
    const full = hardware(10, 90);
    full.filesystems = [{ mount: '/', fstype: 'ext4', size_bytes: 100, used_bytes: 97, avail_bytes: 3 }];
    const nodes = [node('n1', 'hall-pi', { hardware: full }), node('n2', 'gone', { status: 'offline', status_since: 5 }), node('n3', 'old', { status: 'revoked' })];
    const demos = [
      labDemo('d1', 'kiosk', { down: true, expected: true, state: 'crashed', ended_at: 10 }),
      labDemo('d2', 'fine'), labDemo('d3', 'was', { state: 'stopped' }),
      labDemo('d4', 'retired', { node_id: 'n3', down: false, expected: true, state: 'crashed' }),
    ];
    const problems = wallProblems({ nodes, demos, devices: [], now: 100 });
    expect(problems.map((p) => `${p.title}: ${p.status}`)).toEqual(['gone: offline', 'kiosk: down (crashed)', 'hall-pi: hot 90°C', 'hall-pi: disk 97%']);
    expect(wallSummary({ nodes, demos, devices: [], now: 100 })).toBe('1 demo running · 1 stopped · 1 of 2 nodes online');
  });

  it('shows keepalive devices that are down or late, and counts the watched ones in the summary', () => {
    const devices = [
      device('e1', 'door-esp32', { status: 'down', status_since: 50, last_message: 'sensor lost' }), device('e2', 'clock', { status: 'late', status_since: 60 }),
      device('e3', 'fine-esp'), device('e4', 'resting', { status: 'paused' }), device('e5', 'unseen', { status: 'new' }),
    ];
    const problems = wallProblems({ nodes: [], demos: [], devices, now: 100 });
    expect(problems.map((p) => `${p.title}: ${p.status} (${p.detail})`)).toEqual(['door-esp32: keepalive down (device · sensor lost)', 'clock: keepalive late (device)']);
    expect(wallSummary({ nodes: [], demos: [], devices, now: 100 })).toBe('0 demos running · 0 of 0 nodes online · 1 of 3 devices up');
  });

  it('leaves out the devices of a revoked node, as it does its demos', () => {
    const nodes = [node('n1', 'hall-pi'), node('n3', 'old', { status: 'revoked' })];
    const devices = [device('e1', 'on-old', { node_id: 'n3', status: 'down', status_since: 50 }), device('e2', 'on-hall', { node_id: 'n1', status: 'late', status_since: 60 })];
    const problems = wallProblems({ nodes, demos: [], devices, now: 100 });
    expect(problems.map((p) => `${p.title}: ${p.status}`)).toEqual(['on-hall: keepalive late']);
    expect(wallSummary({ nodes, demos: [], devices, now: 100 })).toBe('0 demos running · 1 of 1 node online · 0 of 1 device up');
  });

  it('fits 200 tiles on 1920x1080 and 3840x2160 without scrolling, and pages what cannot be read at that size', () => {
    for (const [w, h] of [[1920, 1080], [3840, 2160]] as const) {
      const area = { width: w - 40, height: h * 0.8 - 40 };
      const layout = tileLayout(200, area.width, area.height, Math.max(72, h / 12));
      expect(layout.rows * layout.tileHeight + (layout.rows - 1) * 12).toBeLessThanOrEqual(area.height + 0.5);
      expect(layout.cols * layout.tileWidth + (layout.cols - 1) * 12).toBeLessThanOrEqual(area.width + 0.5);
      expect(layout.perPage * layout.pages).toBeGreaterThanOrEqual(200);
      expect(layout.tileHeight).toBeGreaterThanOrEqual(Math.max(72, h / 12));
    }
    const few = tileLayout(3, 1880, 824, 90);
    expect(few.pages).toBe(1);
    expect(few.tileHeight).toBeGreaterThan(200);
  });
});
