// Log retention on a real small disk (tmpfs) under a sustained log stream: the size cap counts the
// files as they are on disk (database, WAL, search index and its WAL), deleted rows give their
// space back, and the free-space floor holds.
import fs from 'node:fs';
import path from 'node:path';
import { STORE_FILES } from '../server/src/services/storage-monitor.js';
import { afterEach, describe, expect, it } from 'vitest';
import { connectAgent } from '../server/test/support/simulated-agent.mjs';
import { canMount, mountRequired, SmallDisk } from './support/small-disk.js';
import { startTestServer, waitFor, type TestServer } from '../server/test/support/test-server.js';

const MiB = 1024 * 1024;

/** Bytes the store's files take on disk (allocated blocks). */
function storeBytes(dir: string): number {
  return STORE_FILES.reduce((sum, name) => {
    try {
      return sum + fs.statSync(path.join(dir, name)).blocks * 512;
    } catch {
      return sum;
    }
  }, 0);
}

const T0 = Date.now();

/** A batch of `count` lines of about 200 bytes each, words varied enough to make a real index; line i written at T0 + i ms. */
function batch(id: string, from: number, count: number) {
  const records = Array.from({ length: count }, (_, k) => {
    const i = from + k;
    const words = Array.from({ length: 24 }, (_, w) => `w${(i * 7919 + w * 104_729) % 50_000}`).join(' ');
    return { ts: new Date(T0 + i).toISOString(), level: 'INFO', message: `line ${i} ${words}`, offset: i * 256 };
  });
  return { type: 'demo.logs', id, data: { token: 'k3JxV9mQ2pL8sT4wZ6yB1c', demo: 'chatty', file_generation: 0, start_offset: from * 256, end_offset: (from + count) * 256, records } };
}

interface StreamFigures {
  batches: number;
  /** Batches answered logs.nack, by code (each is sent again until stored). */
  refused: Record<string, number>;
  /** Sampled every 5 ms while the stream runs. */
  maxStoreBytes: number;
  minFreeBytes: number;
}

/**
 * Streams `total` lines in batches of 500, 4 in flight, as fast as the server takes them; a
 * refused batch is sent again after a tenth of its retry_after_ms. Samples the disk meanwhile.
 */
async function stream(server: TestServer, dir: string, disk: SmallDisk, total: number): Promise<StreamFigures> {
  const { config } = await server.enroll(`pi-${path.basename(dir)}`);
  const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
  const figures: StreamFigures = { batches: 0, refused: {}, maxStoreBytes: 0, minFreeBytes: Number.POSITIVE_INFINITY };
  const sampler = setInterval(() => {
    figures.maxStoreBytes = Math.max(figures.maxStoreBytes, storeBytes(dir));
    figures.minFreeBytes = Math.min(figures.minFreeBytes, disk.freeBytes());
  }, 5);
  const size = 500;
  const send = async (from: number): Promise<void> => {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const id = `b${from}-${attempt}`;
      agent.send(batch(id, from, size));
      const answer = await agent.next((m) => m.id === id, 30_000);
      if (answer.type !== 'logs.nack') {
        figures.batches++;
        return;
      }
      figures.refused[answer.data.code] = (figures.refused[answer.data.code] ?? 0) + 1;
      await new Promise((r) => setTimeout(r, answer.data.retry_after_ms / 10));
    }
    throw new Error(`batch at line ${from} refused 1000 times`);
  };
  let next = 0;
  const lanes = Array.from({ length: 4 }, async () => {
    while (next < total) {
      const from = next;
      next += size;
      await send(from);
    }
  });
  try {
    await Promise.all(lanes);
  } finally {
    clearInterval(sampler);
    agent.close();
  }
  return figures;
}

const newestMessage = async (server: TestServer) => (await server.api('GET', '/api/v1/logs?limit=1')).json().records[0].message as string;
const oldestGone = async (server: TestServer) => (await server.api('GET', `/api/v1/logs?until=${new Date(T0 + 1000).toISOString()}&limit=1`)).json().records.length === 0;

describe.skipIf(!canMount && !mountRequired)('log retention on a real small disk', () => {
  let disk: SmallDisk | undefined;
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
    disk?.unmount();
    disk = undefined;
  });

  // 40 MiB of log lines as fast as the server takes them, on a 20 MiB disk with a 5 MiB cap: the
  // case that filled the disk before (5 MB cap, 20 MB disk). The WAL and the index catching up
  // come and go on top of the cap (a few MiB, whatever the cap); past 1.1 x the cap new batches
  // wait (logs.nack overloaded: the agent sends them again), so nothing is lost.
  it('keeps the files near a 5 MiB cap under a stream of 40 MiB on a 20 MiB disk: never full, every line stored in turn, the oldest deleted', async () => {
    disk = SmallDisk.mount(20);
    const dir = path.join(disk.dir, 'cap');
    server = await startTestServer({ DVIC_LOG_RETENTION_MB: '5', DVIC_MIN_FREE_MB: '2' }, { dataDir: dir });
    const figures = await stream(server, dir, disk, 200_000);
    expect(figures.batches).toBe(400);
    expect(figures.refused.storage_full ?? 0).toBe(0);
    expect(figures.minFreeBytes).toBeGreaterThan(2 * 2 * MiB);
    expect(figures.maxStoreBytes).toBeLessThan(2 * 5 * MiB);
    await waitFor(() => storeBytes(dir) <= 5 * MiB, 10_000, 'the files back under the cap');
    expect(await newestMessage(server)).toMatch(/^line 199999 /);
    expect(await oldestGone(server)).toBe(true);
  }, 120_000);

  // No cap to speak of: the free-space floor (8 MiB) is what holds. Under twice the floor the
  // oldest logs make room and new batches wait (overloaded), so the floor is never reached and no
  // batch is refused for a full disk.
  it('keeps the free-space floor under a stream of 40 MiB on a 32 MiB disk with no size cap to speak of', async () => {
    disk = SmallDisk.mount(32);
    const dir = path.join(disk.dir, 'floor');
    server = await startTestServer({ DVIC_MIN_FREE_MB: '8' }, { dataDir: dir });
    const figures = await stream(server, dir, disk, 200_000);
    expect(figures.batches).toBe(400);
    expect(figures.refused.storage_full ?? 0).toBe(0);
    expect(figures.minFreeBytes).toBeGreaterThan(8 * MiB);
    expect(await newestMessage(server)).toMatch(/^line 199999 /);
    expect(await oldestGone(server)).toBe(true);
  }, 120_000);
});
