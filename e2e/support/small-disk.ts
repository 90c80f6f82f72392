// A real small filesystem for disk-full tests: a tmpfs of a few MiB mounted on a temporary
// directory (needs root), which a test fills with a file and empties again.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Root may mount; elsewhere the tests skip, except under CI=true where that is a failure. */
export const canMount = process.getuid?.() === 0;
export const mountRequired = process.env.CI === 'true';

export class SmallDisk {
  private readonly filler: string;

  private constructor(readonly dir: string) {
    this.filler = path.join(dir, 'filler');
  }

  /** Mounts a tmpfs of sizeMiB on a new temporary directory. */
  static mount(sizeMiB: number): SmallDisk {
    if (!canMount) throw new Error('disk-full tests mount a tmpfs: run them as root (CI=true makes this a failure, not a skip)');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-small-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0755`, 'tmpfs', dir]);
    return new SmallDisk(dir);
  }

  freeBytes(): number {
    const s = fs.statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /** Fills the disk to its last block with a file (bounded: one write per free block at worst). */
  fill(): void {
    const fd = fs.openSync(this.filler, 'a');
    try {
      for (const chunk of [1024 * 1024, 4096]) {
        const buffer = Buffer.alloc(chunk, 0x55);
        for (let i = 0; i < 1_000_000; i++) {
          try {
            fs.writeSync(fd, buffer);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
            throw err;
          }
        }
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Deletes the filler: the space is back. */
  unfill(): void {
    fs.rmSync(this.filler, { force: true });
  }

  /** Unmounts (lazily when a process still holds a file there) and removes the directory. */
  unmount(): void {
    try {
      execFileSync('umount', [this.dir], { stdio: 'ignore' });
    } catch {
      execFileSync('umount', ['-l', this.dir], { stdio: 'ignore' });
    }
    fs.rmdirSync(this.dir);
  }
}
