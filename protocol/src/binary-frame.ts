/**
 * Binary WebSocket frames carry terminal and tunnel bytes: 1 opcode byte, a 4-byte big-endian
 * channel id, then the payload. Credit frames carry a 4-byte byte count instead of data
 * (the receiver grants the sender that many more bytes on the channel). Artifact chunks answer a
 * deploy.fetch: an 8-byte big-endian offset, then the artifact's bytes from there.
 */
export const BinaryOpcode = {
  terminalData: 0x01,
  tunnelData: 0x02,
  credit: 0x03,
  artifactChunk: 0x10,
} as const;
export type BinaryOpcode = (typeof BinaryOpcode)[keyof typeof BinaryOpcode];

export const BINARY_HEADER_BYTES = 5;

export interface BinaryFrame {
  opcode: BinaryOpcode;
  channel: number;
  payload: Buffer;
}

const knownOpcodes = new Set<number>(Object.values(BinaryOpcode));

export function encodeBinaryFrame(opcode: BinaryOpcode, channel: number, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(BINARY_HEADER_BYTES + payload.length);
  frame.writeUInt8(opcode, 0);
  frame.writeUInt32BE(channel, 1);
  frame.set(payload, BINARY_HEADER_BYTES);
  return frame;
}

/** Returns null for a frame too short or with an unknown opcode. */
export function decodeBinaryFrame(frame: Buffer): BinaryFrame | null {
  if (frame.length < BINARY_HEADER_BYTES) return null;
  const opcode = frame.readUInt8(0);
  if (!knownOpcodes.has(opcode)) return null;
  const channel = frame.readUInt32BE(1);
  if (channel === 0) return null;
  return { opcode: opcode as BinaryOpcode, channel, payload: frame.subarray(BINARY_HEADER_BYTES) };
}
