import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, type ArtifactView } from '@dvic/protocol';
import { ApiError, notFound } from '../errors.js';
import type { ArtifactsRepository } from '../repositories/artifacts-repository.js';

export interface ArtifactLimits {
  /** The largest artifact accepted (DVIC_ARTIFACT_MAX_MB). */
  maxBytes: number;
  /** All artifacts together (DVIC_ARTIFACTS_MAX_MB). */
  maxTotalBytes: number;
}

/** An upload on disk, hashed, not yet an artifact. */
export interface StagedUpload {
  file: string;
  size: number;
  sha256: string;
  format: ArtifactView['format'];
}

const INCOMING_PREFIX = '.incoming-';

/** What the first bytes say: gzip (taken as tar.gz), zip, or any other file. */
export function sniffFormat(head: Buffer): ArtifactView['format'] {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x504b0304) return 'zip';
  return 'file';
}

/** Counts and hashes the bytes going through, and stops the stream past a cap. */
class Measure extends Transform {
  readonly hash = crypto.createHash('sha256');
  size = 0;
  head = Buffer.alloc(0);

  constructor(private readonly cap: number, private readonly tooLarge: () => ApiError) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.cap) return done(this.tooLarge());
    if (this.head.length < 4) this.head = Buffer.concat([this.head, chunk.subarray(0, 4)]);
    this.hash.update(chunk);
    done(null, chunk);
  }
}

/**
 * Artifacts: bytes streamed to files in <data dir>/artifacts (never held in memory), sha256 and
 * size computed on the way, metadata in the database. Uploads past the caps are refused (413).
 */
export class ArtifactStore {
  readonly dir: string;

  constructor(dataDir: string, private readonly repository: ArtifactsRepository, private readonly limits: ArtifactLimits) {
    this.dir = path.join(dataDir, 'artifacts');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const name of fs.readdirSync(this.dir)) {
      if (name.startsWith(INCOMING_PREFIX)) fs.rmSync(path.join(this.dir, name), { force: true }); // uploads a restart cut
    }
  }

  /** Refuses an upload whose declared length is already too large, before a byte is read. */
  checkDeclaredSize(contentLength: number | undefined): void {
    if (contentLength !== undefined) this.checkRoom(contentLength);
  }

  /** Streams an upload to a file in the store's directory, hashing it; the file is removed on failure. */
  async stage(body: Readable): Promise<StagedUpload> {
    const file = path.join(this.dir, `${INCOMING_PREFIX}${crypto.randomUUID()}`);
    const room = Math.min(this.limits.maxBytes, this.limits.maxTotalBytes - this.repository.totalBytes());
    const measure = new Measure(Math.max(0, room), () => this.tooLarge());
    try {
      await pipeline(body, measure, fs.createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      fs.rmSync(file, { force: true });
      throw err;
    }
    return { file, size: measure.size, sha256: measure.hash.digest('hex'), format: sniffFormat(measure.head) };
  }

  /** Makes a staged upload an artifact (synchronously, inside the audited transaction). */
  commit(staged: StagedUpload, name: string, version: string, by: string): ArtifactView {
    try {
      if (this.repository.byNameVersion(name, version)) {
        throw new ApiError(409, ErrorCode.conflict, `artifact ${name} ${version} already exists: delete it first or give another version`);
      }
      const artifact: ArtifactView = {
        id: crypto.randomUUID(), name, version, size: staged.size, sha256: staged.sha256, format: staged.format, created_at: Date.now(), created_by: by,
      };
      this.repository.insert(artifact);
      fs.renameSync(staged.file, this.file(artifact.id));
      return artifact;
    } catch (err) {
      this.discard(staged);
      throw err;
    }
  }

  discard(staged: StagedUpload): void {
    fs.rmSync(staged.file, { force: true });
  }

  list(): ArtifactView[] {
    return this.repository.list();
  }

  get(id: string): ArtifactView {
    const artifact = this.repository.get(id);
    if (!artifact) throw notFound(`artifact ${id}`);
    return artifact;
  }

  /** The file of an artifact (ids are UUIDs from this store, never a client's path). */
  file(id: string): string {
    return path.join(this.dir, id);
  }

  /** Deletes the record now and the file once the transaction commits. */
  delete(id: string, afterCommit: (fn: () => void) => void): ArtifactView {
    const artifact = this.get(id);
    this.repository.delete(id);
    afterCommit(() => fs.rmSync(this.file(id), { force: true }));
    return artifact;
  }

  private checkRoom(size: number): void {
    if (size > this.limits.maxBytes || size > this.limits.maxTotalBytes - this.repository.totalBytes()) throw this.tooLarge();
  }

  private tooLarge(): ApiError {
    const free = Math.max(0, this.limits.maxTotalBytes - this.repository.totalBytes());
    const mb = (n: number) => `${Math.floor(n / (1024 * 1024))} MB`;
    return new ApiError(413, ErrorCode.payloadTooLarge,
      `artifact too large: at most ${mb(this.limits.maxBytes)} per artifact (DVIC_ARTIFACT_MAX_MB) and ${mb(free)} left in the store (DVIC_ARTIFACTS_MAX_MB)`,
      { connection: 'close' });
  }
}
