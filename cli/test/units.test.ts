import { describe, expect, it } from 'vitest';
import { parseLabels } from '../src/args.js';
import { UsageError, CliError } from '../src/errors.js';
import { colorEnabled, paint } from '../src/format/color.js';
import { diskPercent, hottest, memoryPercent, nodeRow } from '../src/format/nodes.js';
import { renderTable } from '../src/format/table.js';
import { bytes, celsius, duration, percent } from '../src/format/units.js';
import { resolveNode } from '../src/resolve-node.js';

describe('units', () => {
  it('formats durations the way people read them', () => {
    expect([0, 59_999, 60_000, 3_599_000, 3_600_000, 5_400_000, 86_400_000, 90_000_000].map(duration))
      .toEqual(['0s', '59s', '1m', '59m', '1h', '1h30m', '1d', '1d1h']);
  });
  it('formats bytes, percentages and temperatures', () => {
    expect([0, 1023, 1024, 1536, 10 * 1024 * 1024, 5e12].map(bytes)).toEqual(['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '10 MiB', '4.5 TiB']);
    expect([percent(12.6), percent(null), celsius(47.5), celsius(undefined)]).toEqual(['13%', '-', '48°C', '-']);
  });
});

describe('table', () => {
  it('aligns columns, right-aligns numbers, and ignores colour codes when measuring', () => {
    const out = renderTable(['NAME', 'CPU'], [[{ text: 'pi', color: 'green' }, { text: '5%', align: 'right' }], ['jetson-1', { text: '100%', align: 'right' }]], true);
    const plain = out.replace(new RegExp(`${String.fromCharCode(27)}\\[\\d+m`, 'g'), '');
    expect(plain.split('\n')).toEqual(['NAME       CPU', 'pi          5%', 'jetson-1  100%']);
    expect(out).toContain('\x1b[32mpi\x1b[0m');
  });
  it('never colours output that is not a terminal, or when NO_COLOR is set', () => {
    expect(colorEnabled({ isTTY: false }, {})).toBe(false);
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled({ isTTY: true }, {})).toBe(true);
    expect(paint('x', 'red', false)).toBe('x');
  });
});

describe('node rows', () => {
  const hw = {
    cpu: { total_pct: 42.4 }, uptime_s: 3700, memory: { total_bytes: 1000, used_bytes: 250 },
    filesystems: [{ mount: '/boot', size_bytes: 100, used_bytes: 90 }, { mount: '/', size_bytes: 100, used_bytes: 30 }],
    temperatures: [{ celsius: 40 }, { celsius: 61.2 }],
  };
  it('reads memory, root disk and the hottest sensor', () => {
    expect([memoryPercent(hw), diskPercent(hw), hottest(hw)]).toEqual([25, 30, 61.2]);
    expect(diskPercent({ filesystems: [{ mount: '/a', size_bytes: 10, used_bytes: 1 }, { mount: '/b', size_bytes: 10, used_bytes: 9 }] })).toBe(90);
  });
  it('shows status as text with its age, and no hardware for an offline node', () => {
    const node = { id: 'x', name: 'pi', labels: { room: 'a' }, status: 'offline' as const, status_since: 0, last_seen: 0, agent_version: '0.1.0', host: null, hardware: hw, hardware_at: 0 };
    const row = nodeRow(node, 120_000).map((c) => c.text);
    expect(row).toEqual(['pi', 'offline 2m', '-', '-', '-', '-', '-', '-', '0.1.0', 'room=a']);
    expect(nodeRow({ ...node, status: 'online' }, 120_000).map((c) => c.text).slice(1, 7)).toEqual(['online 2m', '42%', '25%', '30%', '61°C', '1h1m']);
  });
});

describe('node references', () => {
  const nodes = [
    { id: 'aaaa1111-0000-4000-8000-000000000001', name: 'pi-1' },
    { id: 'aaaa2222-0000-4000-8000-000000000002', name: 'pi-2' },
    { id: 'bbbb3333-0000-4000-8000-000000000003', name: 'jetson' },
  ];
  it('finds a node by full id, by name, or by a unique id prefix', () => {
    expect(resolveNode(nodes, nodes[0]!.id).name).toBe('pi-1');
    expect(resolveNode(nodes, 'jetson').id).toBe(nodes[2]!.id);
    expect(resolveNode(nodes, 'bbb').name).toBe('jetson');
  });
  it('refuses an ambiguous prefix and lists the candidates', () => {
    expect(() => resolveNode(nodes, 'aaaa')).toThrow(CliError);
    expect(() => resolveNode(nodes, 'aaaa')).toThrow('"aaaa" matches 2 nodes: pi-1 (aaaa1111-0000-4000-8000-000000000001), pi-2 (aaaa2222-0000-4000-8000-000000000002)');
    expect(() => resolveNode(nodes, 'zzz')).toThrow(/no node "zzz"/);
  });
});

describe('labels', () => {
  it('parses key=value and key- for removal', () => {
    expect(parseLabels(['room=hall b', 'kind=pi', 'old-'], true)).toEqual({ room: 'hall b', kind: 'pi', old: null });
    expect(() => parseLabels(['nope'])).toThrow(UsageError);
  });
});
