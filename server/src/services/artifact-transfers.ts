import fs from 'node:fs';
import { BINARY_HEADER_BYTES, BinaryOpcode, type DeployFetchMessage } from '@dvic/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { NodeLink } from '../hub/node-link.js';

/** The largest chunk served at once: with its headers it stays well under a frame (MAX_FRAME_BYTES). */
export const MAX_CHUNK_BYTES = 512 * 1024;
const OFFSET_BYTES = 8;
/** An agent asks for a few chunks ahead; past this many waiting, or this much unread on its socket, more asks are dropped. */
const MAX_WAITING_FETCHES = 16;
const MAX_UNREAD_BYTES = 8 * 1024 * 1024;

interface Transfer {
  channel: number;
  file: string;
  size: number;
  handle: Promise<fs.promises.FileHandle> | undefined;
  /** Chunks are read one after another, so they leave in the order they were asked for. */
  queue: Promise<void>;
  waiting: number;
  served: number;
}

/**
 * Serves artifact bytes to agents over their own authenticated connection: each deploy.fetch
 * (deploy id, offset, length) is answered by one artifactChunk frame (offset, then the bytes).
 * Only a node with an open transfer for that deploy gets anything; memory per node is what it
 * asked for, which its agent bounds (a few chunks in flight).
 */
export class ArtifactTransfers {
  private readonly transfers = new Map<string, Transfer>();
  private nextChannel = 1;

  constructor(private readonly hub: NodeLink, private readonly log: FastifyBaseLogger) {
    hub.on('deploy.fetch', (nodeId, message) => this.onFetch(nodeId, message));
  }

  /** Opens a transfer of a file to a node for a deploy; returns the channel its chunks go on. */
  begin(nodeId: string, deployId: string, file: string, size: number): number {
    const existing = this.transfers.get(key(nodeId, deployId));
    if (existing) return existing.channel;
    const channel = this.nextChannel;
    this.nextChannel = this.nextChannel >= 0xffffffff ? 1 : this.nextChannel + 1;
    this.transfers.set(key(nodeId, deployId), { channel, file, size, handle: undefined, queue: Promise.resolve(), waiting: 0, served: 0 });
    return channel;
  }

  /** Bytes served so far for a transfer (a resumed download is served only what it lacked). */
  served(nodeId: string, deployId: string): number {
    return this.transfers.get(key(nodeId, deployId))?.served ?? 0;
  }

  end(nodeId: string, deployId: string): void {
    const transfer = this.transfers.get(key(nodeId, deployId));
    if (!transfer) return;
    this.transfers.delete(key(nodeId, deployId));
    const { handle } = transfer;
    if (handle) void transfer.queue.then(() => handle).then((h) => h.close()).catch(() => undefined);
  }

  private onFetch(nodeId: string, { data }: DeployFetchMessage): void {
    const transfer = this.transfers.get(key(nodeId, data.deploy_id));
    if (!transfer) {
      this.log.debug({ nodeId, deployId: data.deploy_id }, 'deploy.fetch for no open transfer: ignored');
      return;
    }
    if (transfer.waiting >= MAX_WAITING_FETCHES || this.hub.bufferedTo(nodeId) > MAX_UNREAD_BYTES) {
      this.log.warn({ nodeId, deployId: data.deploy_id }, 'deploy.fetch dropped: the agent asks for more than it reads');
      return;
    }
    transfer.waiting++;
    transfer.queue = transfer.queue.then(() => this.serve(nodeId, transfer, data.offset, data.length)).catch((err: unknown) => {
      this.log.warn({ err, nodeId, deployId: data.deploy_id }, 'reading an artifact chunk failed');
    }).finally(() => { transfer.waiting--; });
  }

  private async serve(nodeId: string, transfer: Transfer, offset: number, asked: number): Promise<void> {
    const length = Math.max(0, Math.min(asked, MAX_CHUNK_BYTES, transfer.size - offset));
    transfer.handle ??= fs.promises.open(transfer.file, 'r');
    const handle = await transfer.handle;
    const frame = Buffer.allocUnsafe(BINARY_HEADER_BYTES + OFFSET_BYTES + length);
    frame.writeUInt8(BinaryOpcode.artifactChunk, 0);
    frame.writeUInt32BE(transfer.channel, 1);
    frame.writeBigUInt64BE(BigInt(offset), BINARY_HEADER_BYTES);
    const { bytesRead } = length > 0 ? await handle.read(frame, BINARY_HEADER_BYTES + OFFSET_BYTES, length, offset) : { bytesRead: 0 };
    transfer.served += bytesRead;
    this.hub.sendBinaryTo(nodeId, frame.subarray(0, BINARY_HEADER_BYTES + OFFSET_BYTES + bytesRead));
  }
}

const key = (nodeId: string, deployId: string) => `${nodeId}/${deployId}`;
