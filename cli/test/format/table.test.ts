import { describe, expect, it } from 'vitest';
import { colorEnabled, paint } from '../../src/format/color.js';
import { renderTable } from '../../src/format/table.js';

describe('tables', () => {
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
