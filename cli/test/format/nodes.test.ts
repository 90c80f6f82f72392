import { describe, expect, it } from 'vitest';
import { nodeRow, trustCell } from '../../src/format/nodes.js';
import { demo, hardware, node } from '../../../protocol/test/fixtures.js';

describe('node rows', () => {
  const hw = {
    ...hardware(42.4, 61.2), uptime_s: 3700, memory: { total_bytes: 1000, available_bytes: 750, used_bytes: 250, swap_total_bytes: 0, swap_used_bytes: 0 },
    filesystems: [{ mount: '/boot', fstype: 'vfat', size_bytes: 100, used_bytes: 90, avail_bytes: 10 }, { mount: '/', fstype: 'ext4', size_bytes: 100, used_bytes: 30, avail_bytes: 70 }],
  };
  const pi = node('x', 'pi', { labels: { room: 'a' }, status: 'offline', agent_version: '0.1.0', hardware: hw });

  it('shows status as text with its age, and no hardware for an offline node', () => {
    expect(nodeRow(pi, 120_000).map((c) => c.text)).toEqual(['pi', 'offline 2m', '-', '-', '-', '-', '-', '-', '0.1.0', 'room=a']);
  });

  it('reads CPU, memory, the root disk and the hottest sensor of an online node', () => {
    expect(nodeRow({ ...pi, status: 'online' }, 120_000).map((c) => c.text).slice(1, 7)).toEqual(['online 2m', '42%', '25%', '30%', '61°C', '1h 1m']);
  });
});

describe('demo rows', () => {
  it('warn about a demo whose log file another user owns', () => {
    expect(trustCell(demo({ trusted: false, file_uid: 1001 }))).toEqual({ text: "⚠ untrusted: file owned by uid 1001, not the demo's user", color: 'yellow' });
    expect(trustCell(demo()).text).toBe('');
  });
});
