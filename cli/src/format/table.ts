import { paint, type Color } from './color.js';

export interface Cell {
  text: string;
  color?: Color;
  align?: 'left' | 'right';
}

const visible = (s: string) => [...s].length;

/** Aligned columns separated by two spaces; colours do not count toward widths. */
export function renderTable(headers: string[], rows: (Cell | string)[][], color: boolean): string {
  const cells = rows.map((row) => row.map((c) => (typeof c === 'string' ? { text: c } : c)));
  const widths = headers.map((h, i) => Math.max(visible(h), ...cells.map((r) => visible(r[i]?.text ?? ''))));
  const line = (row: Cell[]) => row.map((c, i) => {
    const pad = ' '.repeat(widths[i]! - visible(c.text));
    const text = paint(c.text, c.color, color);
    return c.align === 'right' ? pad + text : i === row.length - 1 ? text : text + pad;
  }).join('  ');
  // A column of right-aligned numbers gets a right-aligned title.
  const titles = headers.map((h, i): Cell => ({ text: h, color: 'bold', align: cells[0]?.[i]?.align }));
  return [line(titles), ...cells.map(line)].join('\n');
}
