import { describe, expect, it } from 'vitest';
import { logJson, logLine } from '../../src/format/log-line.js';
import { timestamp } from '../../src/format/timestamp.js';
import { logRecord } from '../../../protocol/test/fixtures.js';

const names = new Map([['n1', 'pi-3']]);

describe('log lines', () => {
  it('shows time, node/demo, level and message', () => {
    expect(logLine(logRecord(1, { level: 'WARN', message: 'disk almost full' }), names, false)).toBe(`${timestamp(1001)} pi-3/kiosk WARN  disk almost full`);
    expect(logLine(logRecord(2, { node_id: 'abcdef0123', demo: null, source: 'system' }), names, false)).toMatch(/ abcdef01\/system INFO {2}line 2$/);
  });

  it('shows a record standing for lost lines as a warning, in yellow on a terminal', () => {
    const marker = logRecord(3, { level: 'WARN', message: 'a rotated file was deleted before it was read', fields: { lost_lines: 1234 } });
    expect(logLine(marker, names, false)).toMatch(/WARN {2}⚠ 1,234 lines lost: a rotated file was deleted before it was read$/);
    expect(logLine(marker, names, true)).toContain('\x1b[33m⚠ 1,234 lines lost: ');
  });

  it('prints JSON as the API serves it, with the node name', () => {
    expect(JSON.parse(logJson(logRecord(4), names))).toEqual({ ...logRecord(4), node: 'pi-3' });
  });
});
