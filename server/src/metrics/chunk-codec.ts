/**
 * The compact form of a run of points (a chunk): timestamps as delta-of-delta varints, each value
 * column as the varint delta of the value in thousandths when it has at most three decimals (what
 * agents send: percents, bytes, degrees), else a tag byte and the 8 bytes of the double. A steady
 * series costs 1-3 bytes a point; the chunk's row adds a few bytes more per point on disk.
 */

const SCALE = 1000;
/** Past this, scaled integers lose precision (and doubled zigzag varints overflow): stored as doubles. */
const MAX_EXACT = 2 ** 51;
const FLOAT_TAG = 1;

class Writer {
  private buf: Uint8Array;
  length = 0;

  /**
   * Small to start: V8 keeps typed arrays of up to 64 bytes on its heap, where they cost little to
   * make; larger ones take a separate allocation each. A store makes one per chunk, and closing
   * one with 10,000 nodes makes hundreds of thousands.
   */
  constructor(initialBytes = 64) {
    this.buf = new Uint8Array(initialBytes);
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    bigger.set(this.buf.subarray(0, this.length));
    this.buf = bigger;
  }

  /** A non-negative integer up to 2^53, 7 bits a byte. */
  varint(n: number): void {
    this.room(8);
    while (n >= 0x80) {
      this.buf[this.length++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.length++] = n;
  }

  double(v: number): void {
    this.room(8);
    new DataView(this.buf.buffer).setFloat64(this.length, v, true);
    this.length += 8;
  }

  copyTo(target: Uint8Array, offset: number): void {
    target.set(this.buf.subarray(0, this.length), offset);
  }
}

class Reader {
  private pos = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  varint(): number {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('metric chunk cut short');
      const byte = this.buf[this.pos++]!;
      n += (byte & 0x7f) * mul;
      if (byte < 0x80) return n;
      mul *= 0x80;
    }
  }

  double(): number {
    if (this.pos + 8 > this.buf.length) throw new Error('metric chunk cut short');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
}

const zigzag = (n: number) => (n >= 0 ? 2 * n : -2 * n - 1);
const unzigzag = (n: number) => (n % 2 === 0 ? n / 2 : -(n + 1) / 2);

/** The value in thousandths when that is exact, else null. */
function scaled(v: number): number | null {
  const s = Math.round(v * SCALE);
  return Math.abs(s) < MAX_EXACT && s / SCALE === v ? s : null;
}

/** Points of one chunk: timestamps and one array per value column (all of the same length). */
export interface ChunkPoints {
  ts: number[];
  columns: number[][];
}

/** Encodes a chunk point by point as it fills (so a flush costs a copy, not a re-encoding). */
export class ChunkEncoder {
  private readonly body = new Writer();
  private count = 0;
  private prevTs = 0;
  private prevDelta = 0;
  private readonly prev: number[];

  constructor(private readonly width: number) {
    this.prev = new Array<number>(width).fill(0);
  }

  push(ts: number, values: ArrayLike<number>): void {
    const w = this.body;
    if (this.count === 0) this.prevTs = ts;
    const delta = ts - this.prevTs;
    w.varint(zigzag(delta - this.prevDelta));
    this.prevTs = ts;
    this.prevDelta = delta;
    this.count++;
    for (let c = 0; c < this.width; c++) {
      const v = values[c]!;
      const s = scaled(v);
      const d = s === null ? null : zigzag(s - this.prev[c]!);
      if (s === null || d === null || d >= MAX_EXACT) {
        w.varint(FLOAT_TAG);
        w.double(v);
        this.prev[c] = s ?? 0;
      } else {
        w.varint(2 * d);
        this.prev[c] = s;
      }
    }
  }

  /** The head (count, width) and the body in one new buffer: one allocation and one copy (a store's close makes one per chunk). */
  bytes(): Buffer {
    const head = new Writer(16); // two varints
    head.varint(this.count);
    head.varint(this.width);
    const out = Buffer.allocUnsafe(head.length + this.body.length);
    head.copyTo(out, 0);
    this.body.copyTo(out, head.length);
    return out;
  }
}

export function encodeChunk({ ts, columns }: ChunkPoints): Buffer {
  const encoder = new ChunkEncoder(columns.length);
  const row = new Array<number>(columns.length);
  for (let i = 0; i < ts.length; i++) {
    for (let c = 0; c < columns.length; c++) row[c] = columns[c]![i]!;
    encoder.push(ts[i]!, row);
  }
  return encoder.bytes();
}

/** The inverse of encodeChunk; `first` is the chunk's first timestamp (kept in its row). */
export function decodeChunk(data: Uint8Array, first: number): ChunkPoints {
  const r = new Reader(data);
  const n = r.varint();
  const width = r.varint();
  const ts: number[] = new Array<number>(n);
  const columns = Array.from({ length: width }, () => new Array<number>(n));
  let prevTs = first;
  let prevDelta = 0;
  const prev = new Array<number>(width).fill(0);
  for (let i = 0; i < n; i++) {
    prevDelta += unzigzag(r.varint());
    prevTs += prevDelta;
    ts[i] = prevTs;
    for (let c = 0; c < width; c++) {
      const tag = r.varint();
      if (tag === FLOAT_TAG) {
        const v = r.double();
        columns[c]![i] = v;
        prev[c] = scaled(v) ?? 0;
      } else {
        prev[c] = prev[c]! + unzigzag(tag / 2);
        columns[c]![i] = prev[c]! / SCALE;
      }
    }
  }
  return { ts, columns };
}
