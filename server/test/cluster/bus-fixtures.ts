import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeEach } from 'vitest';
import pg from 'pg';
import { testDatabase } from '../support/postgres.js';
import { clusterNames, type ClusterNames } from '../../src/cluster/cluster-names.js';

// The real NATS (JetStream) and PostgreSQL (support/postgres.ts) of this machine, on loopback. A
// test takes names of its own (bucket, stream and subject prefix; a database) and removes them after.
export const NATS_URL = 'nats://127.0.0.1:4222';
export { PG_ADMIN_URL, postgresReachable as postgresAvailable } from '../support/postgres.js';

/**
 * Whether a service answers; under CI=true a missing one throws (a failure, never a skip).
 */
async function available(what: string, probe: () => Promise<void>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch (err) {
    if (process.env.CI === 'true') throw new Error(`${what} is needed by the scale-out tests: ${(err as Error).message}`, { cause: err });
    return false;
  }
}

export const natsAvailable = () => available(`NATS JetStream at ${NATS_URL}`, async () => {
  const nc = await connect({ servers: NATS_URL, timeout: 3000 });
  try {
    await (await nc.jetstreamManager()).getAccountInfo();
  } finally {
    await nc.close();
  }
});

/** A fresh prefix: every bucket, stream and subject of the test is its own. */
function testNames(): ClusterNames {
  return clusterNames(`t${crypto.randomBytes(6).toString('hex')}`);
}

export interface TestBus {
  /** This test's names. */
  readonly names: ClusterNames;
  /** A connection of one replica, closed after the test. */
  connect(name: string): Promise<NatsConnection>;
  /** Runs after the test, before the connections close (stops what the test started). */
  onCleanUp(stop: () => unknown): void;
}

/** Call inside describe(): each test gets names of its own, and everything is removed after it. */
export function busPerTest(): TestBus {
  return testBus(beforeEach, afterEach);
}

/** The same, with one set of names for the whole describe(): for what costs seconds to start (servers). */
export function busPerFile(): TestBus {
  return testBus(() => undefined, afterAll);
}

function testBus(before: (fn: () => void) => void, after: (fn: () => Promise<void>, timeout?: number) => void): TestBus {
  let names = testNames();
  const opened: NatsConnection[] = [];
  const stops: (() => unknown)[] = [];
  before(() => { names = testNames(); });
  after(async () => {
    for (const stop of stops.splice(0)) await stop();
    await cleanUpNats(opened, names);
  }, 60_000);
  return {
    get names() { return names; },
    connect: async (name) => {
      const nc = await connect({ servers: NATS_URL, name, timeout: 5000 });
      opened.push(nc);
      return nc;
    },
    onCleanUp: (stop) => stops.push(stop),
  };
}

/** Deletes what a lab's replicas made on the NATS server under this prefix (the holders bucket, the event stream). */
export async function removeLabStreams(names: ClusterNames): Promise<void> {
  const admin = await connect({ servers: NATS_URL });
  const jsm = await admin.jetstreamManager();
  for (const stream of [`KV_${names.holdersBucket}`, names.eventsStream]) {
    await jsm.streams.delete(stream).catch(() => false); // not made by every test
  }
  await admin.close();
}

/** Closes the test's connections and deletes what it made on the NATS server. */
async function cleanUpNats(opened: NatsConnection[], names: ClusterNames): Promise<void> {
  await removeLabStreams(names);
  await Promise.all(opened.splice(0).map((nc) => (nc.isClosed() ? undefined : nc.close())));
}

/** A database of the test's own, dropped by the returned function. */
export const createTestDatabase = () => testDatabase({ migrated: false });

/** Runs work on a connection of its own to the database, closed after. */
export async function onDatabase<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export const NATS_SERVER = '/usr/sbin/nats-server';

/**
 * A nats-server of the test's own (JetStream, its own port and store), for what the shared one
 * must not go through: being killed and started again. Removed by stop().
 */
export async function privateNats(): Promise<{ url: string; kill: () => Promise<void>; start: () => Promise<void>; stop: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-nats-'));
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const kill = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return; // gone already
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  // Even when a test times out (its finally never runs), the server goes with the test process (and its directory).
  const killAtExit = () => {
    child?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killAtExit);
  const start = async () => {
    // setpriv --pdeathsig: the kernel kills it when the thread that started it ends (the worker
    // process's main thread in vitest's forks pool), also when vitest terminates a worker whose test
    // timed out: no 'exit' event then, so its directory under the temp dir stays.
    child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', NATS_SERVER, '-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
    for (let tries = 0; ; tries++) {
      try {
        await (await connect({ servers: url, timeout: 500 })).close();
        return;
      } catch (err) {
        if (tries > 100 || child.exitCode !== null || child.signalCode !== null) throw new Error(`the test's nats-server did not start on ${url}`, { cause: err });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  await start();
  const stop = async () => {
    await kill();
    process.off('exit', killAtExit);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { url, kill, start, stop };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    }).on('error', reject);
  });
}
