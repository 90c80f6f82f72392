// The helpers the dashboard and the CLI share (@dvic/protocol/shared).
import { describe, expect, it } from 'vitest';
import { bytes, celsius, duration, logText, lostLines, percent, untrustedReason } from '../src/shared/index.js';

describe('units', () => {
  it('formats durations, bytes, percentages and temperatures the way people read them', () => {
    expect([0, 59_999, 60_000, 3_660_000, 90_000_000].map(duration)).toEqual(['0s', '59s', '1m', '1h 1m', '1d 1h']);
    expect([0, 1023, 1024, 1536, 10 * 1024 * 1024, 5e12].map(bytes)).toEqual(['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '10 MiB', '4.5 TiB']);
    expect([percent(12.6), percent(null), percent(undefined, '-'), celsius(47.5), celsius(null, '-')]).toEqual(['13%', '–', '-', '48°C', '-']);
  });
});

describe('lost lines', () => {
  const line = { message: 'camera ready', fields: { camera: 'usb-0' } };
  const marker = { message: 'a rotated file was deleted before it was read', fields: { lost_lines: 1234 } };

  it('tells a marker record from a real line', () => {
    expect([lostLines(line), lostLines({ fields: null }), lostLines(marker)]).toEqual([null, null, 1234]);
  });

  it('shows a marker as a warning with the count of lines lost', () => {
    expect(logText(marker)).toBe('⚠ 1,234 lines lost: a rotated file was deleted before it was read');
    expect(logText({ message: 'gone', fields: { lost_lines: 1 } })).toBe('⚠ 1 line lost: gone');
    expect(logText(line)).toBe('camera ready');
  });
});

describe('untrusted demos', () => {
  it('says who owns the log file of a demo that is not to be believed', () => {
    expect(untrustedReason({ trusted: false, file_uid: 1001 })).toBe("file owned by uid 1001, not the demo's user");
    expect(untrustedReason({ trusted: true, file_uid: 1000 })).toBeNull();
  });
});

describe('agent versions', () => {
  it('orders versions like the agent does and flags a node behind the shipped agent', async () => {
    const { compareAgentVersions, isAgentBehind } = await import('../src/shared/index.js');
    expect(['0.10.0', '0.9.1', '1.0', '0.9.1-rc1', '0.9'].sort(compareAgentVersions)).toEqual(['0.9', '0.9.1', '0.9.1-rc1', '0.10.0', '1.0']);
    expect([isAgentBehind('0.1.0', '0.2.0'), isAgentBehind('0.2.0', '0.2.0'), isAgentBehind('0.3.0', '0.2.0'), isAgentBehind(null, '0.2.0')])
      .toEqual([true, false, false, false]);
  });
});
