// The pure parts of the alert rules: conditions per kind, scopes, versions, error rates, mutes.
import { describe, expect, it } from 'vitest';
import type { AlertMute, AlertRule, LabDemo, NodeView } from '@dvic/protocol';
import { demoConditions, hardwareConditions, nodeConditions } from '../../src/alerts/conditions.js';
import { ErrorRate } from '../../src/alerts/error-rate.js';
import { muteCovers } from '../../src/alerts/mutes.js';
import { inScope } from '../../src/alerts/scope.js';
import { sampleHardware } from '../support/simulated-agent.mjs';

const rule = (kind: AlertRule['kind'], threshold: number | null = null): AlertRule => ({
  id: 'r', name: kind, kind, threshold, for_s: 0, scope: {}, severity: 'warning', enabled: true, repeat_s: null, channels: null, builtin: false, created_at: 0,
});
const node = { id: 'n1', name: 'jetson', labels: { room: 'hall' }, status: 'online', status_since: 5, agent_version: '0.1.0', last_seen: 5 } as Pick<NodeView, 'id' | 'name' | 'labels' | 'status' | 'status_since' | 'agent_version' | 'last_seen'>;

describe('alert conditions', () => {
  it('node offline only for a node seen before; agent behind the shipped version', () => {
    expect(nodeConditions(rule('node_offline'), { ...node, status: 'offline' }, null, 9)[0]).toMatchObject({ active: true, since: 5, key: 'node:n1' });
    expect(nodeConditions(rule('node_offline'), { ...node, status: 'offline', last_seen: null }, null, 9)[0]!.active).toBe(false);
    expect(nodeConditions(rule('agent_version'), node, '0.2.0', 9)[0]).toMatchObject({ active: true, summary: 'jetson runs agent 0.1.0, the server ships 0.2.0' });
    expect(nodeConditions(rule('agent_version'), node, '0.1.0', 9)[0]!.active).toBe(false);
    // Numeric parts compare as numbers, as the agent orders versions.
    expect(nodeConditions(rule('agent_version'), { ...node, agent_version: '0.9.2' }, '0.10.0', 9)[0]!.active).toBe(true);
    expect(nodeConditions(rule('agent_version'), { ...node, agent_version: '0.10.0' }, '0.9.2', 9)[0]!.active).toBe(false);
  });

  it('memory available under the threshold; hottest sensor; one disk alert per mount', () => {
    const hw = sampleHardware({
      memory: { total_bytes: 1000, available_bytes: 50, used_bytes: 950, swap_total_bytes: 0, swap_used_bytes: 0 },
      filesystems: [
        { mount: '/', fstype: 'ext4', size_bytes: 100, used_bytes: 10, avail_bytes: 90 },
        { mount: '/boot', fstype: 'vfat', size_bytes: 100, used_bytes: 99, avail_bytes: 1 },
        { mount: '/proc', fstype: 'proc', size_bytes: 0, used_bytes: 0, avail_bytes: 0 },
      ],
    });
    expect(hardwareConditions(rule('memory_available', 10), node, hw, 1)[0]).toMatchObject({ active: true, value: 5, summary: 'jetson has 5 % memory available' });
    expect(hardwareConditions(rule('disk_used', 90), node, hw, 1).map((c) => [c.key, c.active])).toEqual([['disk:n1:/', false], ['disk:n1:/boot', true]]);
  });

  it('a running demo is silent threshold seconds after its last line', () => {
    const demo = { node_id: 'n1', name: 'cam', state: 'running', down: false, started_at: 1000, last_line_at: 5000, ended_at: null } as LabDemo;
    expect(demoConditions(rule('demo_silent', 30), demo, node, 6000)[0]).toMatchObject({ active: true, since: 35_000 });
    expect(demoConditions(rule('demo_silent', 30), { ...demo, state: 'stopped' }, node, 6000)[0]!.active).toBe(false);
  });
});

describe('scopes, versions, error rates, mutes', () => {
  it('a scope narrows by node, labels and a demo pattern (* and ?, nothing else special)', () => {
    const target = { nodeId: 'n1', labels: { room: 'hall', kind: 'pi' }, demo: 'kiosk-2' };
    expect(inScope({}, target)).toBe(true);
    expect(inScope({ node: 'n2' }, target)).toBe(false);
    expect(inScope({ labels: { room: 'hall' } }, target)).toBe(true);
    expect(inScope({ labels: { room: 'lab' } }, target)).toBe(false);
    expect(inScope({ demo: 'kiosk-?' }, target)).toBe(true);
    expect(inScope({ demo: 'kiosk*' }, target)).toBe(true);
    expect(inScope({ demo: 'kiosk.2' }, target)).toBe(false);
    expect(inScope({ demo: '(.*)' }, target)).toBe(false);
    expect(inScope({ demo: 'cam*' }, { ...target, demo: null })).toBe(true);
  });


  it('counts errors of the last minute from a growing counter', () => {
    const rate = new ErrorRate();
    expect(rate.observe('d', 100, 0)).toBe(0);
    expect(rate.observe('d', 110, 1000)).toBe(10);
    expect(rate.observe('d', 115, 30_000)).toBe(15);
    expect(rate.nextDrop('d')).toBe(61_000);
    expect(rate.rate('d', 61_000)).toBe(5);
    expect(rate.observe('d', 3, 62_000)).toBe(5);
  });

  it('a mute covers what it names, between its start and its end', () => {
    const m: AlertMute = { id: 'm', node_id: 'n1', demo: 'cam', device_id: null, rule_id: null, starts_at: 10, ends_at: 20, reason: null, created_by: null, created_at: 0 };
    const subject = { type: 'demo' as const, node_id: 'n1', node_name: 'x', demo: 'cam', device_id: null, device_name: null };
    expect(muteCovers(m, 'r', subject, 15)).toBe(true);
    expect(muteCovers(m, 'r', subject, 20)).toBe(false);
    expect(muteCovers(m, 'r', subject, 9)).toBe(false);
    expect(muteCovers(m, 'r', { ...subject, demo: 'other' }, 15)).toBe(false);
    expect(muteCovers({ ...m, demo: null }, 'r', { ...subject, type: 'node', demo: null }, 15)).toBe(true);
  });
});
