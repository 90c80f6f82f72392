import { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { BinaryOpcode, encodeBinaryFrame, TERMINAL_WINDOW_BYTES, type TunnelCloseMessage } from '@dvic/protocol';
import type { NodeLink } from '../hub/node-link.js';

/** Tunnel channels start here, so they never meet a terminal's channel (those count up from 1). */
const TUNNEL_CHANNEL_BASE = 0x8000_0000;
/** The agent's window: bytes it accepts before it grants more (it grants as it writes to the target). */
const WINDOW_BYTES = TERMINAL_WINDOW_BYTES;
const FRAME_PAYLOAD_BYTES = 64 * 1024;
const DEFAULT_OPEN_TIMEOUT_MS = 20_000;

/** A tunnel could not open (the reason is the user's to read: node offline, connection refused...). */
export class TunnelError extends Error {}

/**
 * TCP connections made by a node's agent on the server's behalf (tunnel.open), each a Duplex stream
 * here: what is written goes to the target, what the target sends is read. Both ways are bounded:
 * the server sends only within the credit the agent granted, and grants the agent credit only for
 * what its reader took.
 */
export class TunnelService {
  private readonly tunnels = new Map<string, TunnelStream>();
  private nextChannel = TUNNEL_CHANNEL_BASE;

  constructor(private readonly hub: NodeLink, private readonly log: FastifyBaseLogger) {
    hub.on('tunnel.opened', (nodeId, { data }) => this.tunnels.get(key(nodeId, data.channel))?.onOpened());
    hub.on('tunnel.close', (nodeId, message) => this.onAgentClose(nodeId, message));
    hub.on('disconnected', (nodeId) => {
      for (const tunnel of [...this.tunnels.values()]) if (tunnel.nodeId === nodeId) tunnel.onRemoteClose('the source node disconnected', true);
    });
    hub.on('binary', ({ nodeId, opcode, channel, payload }) => {
      const tunnel = this.tunnels.get(key(nodeId, channel));
      if (!tunnel) return;
      if (opcode === BinaryOpcode.tunnelData) tunnel.onData(payload);
      else if (opcode === BinaryOpcode.credit && payload.length === 4) tunnel.onCredit(payload.readUInt32BE(0));
    });
  }

  /** Opens host:port from the node; rejects with a TunnelError naming why it could not. */
  open(nodeId: string, host: string, port: number, timeoutMs = DEFAULT_OPEN_TIMEOUT_MS): Promise<Duplex> {
    if (!this.hub.isConnected(nodeId)) return Promise.reject(new TunnelError('the source node is offline'));
    if (!this.hub.capabilities(nodeId)?.includes('tunnel')) {
      return Promise.reject(new TunnelError('the agent on the source node cannot open tunnels (update it)'));
    }
    const channel = this.allocateChannel(nodeId);
    const tunnel = new TunnelStream(this.hub, nodeId, channel, () => this.tunnels.delete(key(nodeId, channel)));
    this.tunnels.set(key(nodeId, channel), tunnel);
    this.hub.sendTo(nodeId, { type: 'tunnel.open', data: { channel, host, port } });
    this.log.debug({ nodeId, channel, host, port }, 'tunnel opening');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        tunnel.destroy();
        reject(new TunnelError(`the source node did not connect to ${host}:${port} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      tunnel.whenOpen((problem) => {
        clearTimeout(timer);
        if (problem) reject(new TunnelError(problem));
        else resolve(tunnel);
      });
    });
  }

  get count(): number {
    return this.tunnels.size;
  }

  stop(): void {
    for (const tunnel of [...this.tunnels.values()]) tunnel.destroy();
  }

  private onAgentClose(nodeId: string, { data }: TunnelCloseMessage): void {
    this.tunnels.get(key(nodeId, data.channel))?.onRemoteClose(data.reason ?? 'closed by the source node');
  }

  private allocateChannel(nodeId: string): number {
    for (;;) {
      const channel = this.nextChannel;
      this.nextChannel = this.nextChannel >= 0xffff_ffff ? TUNNEL_CHANNEL_BASE : this.nextChannel + 1;
      if (!this.tunnels.has(key(nodeId, channel))) return channel;
    }
  }
}

/** One tunnel as a stream. Writes wait for the agent's credit; reads grant it credit as they are taken. */
class TunnelStream extends Duplex {
  private credit: number = WINDOW_BYTES;
  private blockedWrite: { chunk: Buffer; done: (err?: Error | null) => void } | null = null;
  private ungranted = 0;
  private state: 'opening' | 'open' | 'closed' = 'opening';
  private openListener: ((problem: string | null) => void) | null = null;
  private closedByAgent = false;
  /** Why the agent ended the tunnel, once it did. */
  closeReason: string | null = null;

  constructor(private readonly hub: NodeLink, readonly nodeId: string, readonly channel: number, private readonly forget: () => void) {
    super();
  }

  whenOpen(listener: (problem: string | null) => void): void {
    this.openListener = listener;
  }

  onOpened(): void {
    if (this.state !== 'opening') return;
    this.state = 'open';
    this.openListener?.(null);
  }

  onData(payload: Buffer): void {
    if (this.state !== 'open') return;
    if (this.push(payload)) this.grant(payload.length);
    else this.ungranted += payload.length;
  }

  onCredit(bytes: number): void {
    this.credit = Math.min(WINDOW_BYTES, this.credit + bytes);
    const blocked = this.blockedWrite;
    if (blocked) {
      this.blockedWrite = null;
      this._write(blocked.chunk, 'binary', blocked.done);
    }
  }

  /**
   * The agent ended the tunnel (or could not open it): the reason reaches whoever waits. A target
   * that closed its end is a normal end of the stream; a lost source node is an error.
   */
  onRemoteClose(reason: string, failed = false): void {
    if (this.state === 'closed') return;
    this.closedByAgent = true;
    if (this.state === 'opening') {
      this.state = 'closed';
      this.openListener?.(reason);
      this.destroy();
      return;
    }
    this.closeReason = reason;
    this.push(null);
    if (failed) this.destroy(new TunnelError(reason));
    else this.end();
  }

  override _read(): void {
    if (this.ungranted > 0) {
      const bytes = this.ungranted;
      this.ungranted = 0;
      this.grant(bytes);
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.state !== 'open') return done(new TunnelError('the tunnel is closed'));
    let offset = 0;
    while (offset < chunk.length && this.credit > 0) {
      const size = Math.min(chunk.length - offset, this.credit, FRAME_PAYLOAD_BYTES);
      if (!this.hub.sendBinaryTo(this.nodeId, encodeBinaryFrame(BinaryOpcode.tunnelData, this.channel, chunk.subarray(offset, offset + size)))) {
        return done(new TunnelError('the source node disconnected'));
      }
      this.credit -= size;
      offset += size;
    }
    if (offset < chunk.length) this.blockedWrite = { chunk: chunk.subarray(offset), done };
    else done();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.tellClosed('closed by the server');
    this.push(null); // no half-closed tunnels: nothing comes back after the server's end
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (!this.closedByAgent) this.tellClosed('closed by the server');
    if (this.state === 'opening') this.openListener?.('the tunnel was closed before it opened');
    this.state = 'closed';
    this.blockedWrite?.done(new TunnelError('the tunnel is closed'));
    this.blockedWrite = null;
    this.forget();
    done(err);
  }

  private grant(bytes: number): void {
    if (this.state !== 'open') return;
    const credit = Buffer.alloc(4);
    credit.writeUInt32BE(bytes);
    this.hub.sendBinaryTo(this.nodeId, encodeBinaryFrame(BinaryOpcode.credit, this.channel, credit));
  }

  private tellClosed(reason: string): void {
    if (this.closedByAgent || this.state === 'closed') return;
    this.closedByAgent = true; // said once
    this.hub.sendTo(this.nodeId, { type: 'tunnel.close', data: { channel: this.channel, reason } });
  }
}

const key = (nodeId: string, channel: number) => `${nodeId}:${channel}`;
