import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, type ArtifactView } from '@dvic/protocol';
import { conflictOnUnique } from '../db/unique-violation.js';
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

/** Counts and hashes the bytes going through, and stops the stream when room for them cannot be taken. */
class Measure extends Transform {
  readonly hash = crypto.createHash('sha256');
  size = 0;
  head = Buffer.alloc(0);

  /** reserve(n): takes room for n more bytes, false when there is none. */
  constructor(private readonly reserve: (bytes: number) => boolean, private readonly tooLarge: () => ApiError) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (!this.reserve(chunk.length)) return done(this.tooLarge());
    this.size += chunk.length;
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
  /** Bytes of uploads in progress or staged, by staging file: counted against the store's cap so parallel uploads cannot each take all of it. */
  private readonly reserved = new Map<string, number>();
  /** Bytes of the stored artifacts, as last read from the database (read again before each upload: another replica may have added some). */
  private storedBytes = 0;

  constructor(dataDir: string, private readonly repository: ArtifactsRepository, private readonly limits: ArtifactLimits) {
    this.dir = path.join(dataDir, 'artifacts');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const name of fs.readdirSync(this.dir)) {
      if (name.startsWith(INCOMING_PREFIX)) fs.rmSync(path.join(this.dir, name), { force: true }); // uploads a restart cut
    }
  }

  /** Refuses an upload whose declared length is already too large, before a byte is read. */
  async checkDeclaredSize(contentLength: number | undefined): Promise<void> {
    await this.readStoredBytes();
    if (contentLength !== undefined) this.checkRoom(contentLength);
  }

  /** Streams an upload to a file in the store's directory, hashing it; the file is removed on failure. */
  async stage(body: Readable): Promise<StagedUpload> {
    await this.readStoredBytes();
    const file = path.join(this.dir, `${INCOMING_PREFIX}${crypto.randomUUID()}`);
    this.reserved.set(file, 0);
    const take = (bytes: number): boolean => {
      const held = this.reserved.get(file) ?? 0;
      if (held + bytes > this.limits.maxBytes || bytes > this.free()) {
        this.reserved.delete(file); // refused: its room goes back at once, for the uploads still going
        return false;
      }
      this.reserved.set(file, held + bytes);
      return true;
    };
    const measure = new Measure(take, () => this.tooLarge());
    try {
      await pipeline(body, measure, fs.createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      this.reserved.delete(file);
      fs.rmSync(file, { force: true });
      throw err;
    }
    return { file, size: measure.size, sha256: measure.hash.digest('hex'), format: sniffFormat(measure.head) };
  }

  /** Makes a staged upload an artifact (inside the audited transaction: its file is moved in place before the commit). */
  async commit(staged: StagedUpload, name: string, version: string, by: string): Promise<ArtifactView> {
    try {
      const taken = `artifact ${name} ${version} already exists: delete it first or give another version`;
      if (await this.repository.byNameVersion(name, version)) throw new ApiError(409, ErrorCode.conflict, taken);
      const artifact: ArtifactView = {
        id: crypto.randomUUID(), name, version, size: staged.size, sha256: staged.sha256, format: staged.format, created_at: Date.now(), created_by: by,
      };
      await conflictOnUnique(this.repository.insert(artifact), taken);
      fs.renameSync(staged.file, this.file(artifact.id));
      this.reserved.delete(staged.file); // now counted with the stored artifacts (read again before the next upload, should this roll back)
      this.storedBytes += artifact.size;
      return artifact;
    } catch (err) {
      this.discard(staged);
      throw err;
    }
  }

  discard(staged: StagedUpload): void {
    this.reserved.delete(staged.file);
    fs.rmSync(staged.file, { force: true });
  }

  list(): Promise<ArtifactView[]> {
    return this.repository.list();
  }

  async get(id: string): Promise<ArtifactView> {
    const artifact = await this.repository.get(id);
    if (!artifact) throw notFound(`artifact ${id}`);
    return artifact;
  }

  /** The file of an artifact (ids are UUIDs from this store, never a client's path). */
  file(id: string): string {
    return path.join(this.dir, id);
  }

  /** Deletes the record now and the file once the transaction commits. */
  async delete(id: string, afterCommit: (fn: () => void) => void): Promise<ArtifactView> {
    const artifact = await this.get(id);
    await this.repository.delete(id);
    afterCommit(() => {
      fs.rmSync(this.file(id), { force: true });
      this.storedBytes -= artifact.size;
    });
    return artifact;
  }

  /** Room left in the store: the cap less the artifacts and the uploads in progress. */
  private free(): number {
    let reserved = 0;
    for (const bytes of this.reserved.values()) reserved += bytes;
    return this.limits.maxTotalBytes - this.storedBytes - reserved;
  }

  private async readStoredBytes(): Promise<void> {
    this.storedBytes = await this.repository.totalBytes();
  }

  private checkRoom(size: number): void {
    if (size > this.limits.maxBytes || size > this.free()) throw this.tooLarge();
  }

  private tooLarge(): ApiError {
    const free = Math.max(0, this.free());
    const mb = (n: number) => `${Math.floor(n / (1024 * 1024))} MB`;
    return new ApiError(413, ErrorCode.payloadTooLarge,
      `artifact too large: at most ${mb(this.limits.maxBytes)} per artifact (DVIC_ARTIFACT_MAX_MB) and ${mb(free)} left in the store (DVIC_ARTIFACTS_MAX_MB)`,
      { connection: 'close' });
  }
}
