import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ArtifactView } from '@dvic/protocol';
import { ArtifactsRepository } from '../../src/repositories/artifacts-repository.js';
import { repositoryOn } from '../support/repository-on.js';
import { storeKinds } from '../support/stores.js';

const artifact = (change: Partial<ArtifactView> = {}): ArtifactView => ({
  id: crypto.randomUUID(), name: 'kiosk', version: '1.0.0', size: 1024, sha256: 'ab'.repeat(32), format: 'tar.gz',
  created_at: 1_700_000_000_000, created_by: 'admin', ...change,
});

describe.each(storeKinds)('artifacts on $name', (kind) => {
  const under = repositoryOn(kind, (sql) => new ArtifactsRepository(sql));

  it('an empty store holds 0 bytes', async () => {
    expect(await under.repository.totalBytes()).toBe(0);
    expect(await under.repository.list()).toEqual([]);
  });

  it('keeps artifacts, found by id or by name and version, listed newest first, their sizes summed', async () => {
    // Larger than 32 bits: sizes and sums come back as numbers on both dialects.
    const big = artifact({ version: '2.0.0', size: 5 * 2 ** 32, created_at: 1_700_000_000_100, format: 'zip' });
    const small = artifact({ name: 'conf', size: 10, format: 'file' });
    await under.repository.insert(small);
    await under.repository.insert(big);
    expect(await under.repository.get(big.id)).toEqual(big);
    expect(await under.repository.byNameVersion('kiosk', '2.0.0')).toEqual(big);
    expect(await under.repository.byNameVersion('kiosk', '9')).toBeUndefined();
    expect(await under.repository.list()).toEqual([big, small]);
    expect(await under.repository.totalBytes()).toBe(5 * 2 ** 32 + 10);
  });

  it('refuses a second artifact of the same name and version', async () => {
    await under.repository.insert(artifact({ name: 'dup' }));
    await expect(under.repository.insert(artifact({ name: 'dup' }))).rejects.toThrow();
  });

  it('deletes an artifact once', async () => {
    const gone = artifact({ name: 'gone' });
    await under.repository.insert(gone);
    expect(await under.repository.delete(gone.id)).toBe(true);
    expect(await under.repository.delete(gone.id)).toBe(false);
    expect(await under.repository.get(gone.id)).toBeUndefined();
  });
});
