// Replicas of one scaled-out lab (docs/scale-out.md): real server processes sharing a NATS bus
// under a prefix of the test's own. Each replica has its own data dir for now; once the lab's
// store is one PostgreSQL database, pass DVIC_DATABASE_URL in env and drop the copy of the data.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { connect } from 'nats';
import { startServer, tempDir, type ServerProcess } from './processes.js';

export const NATS_URL = 'nats://127.0.0.1:4222';

export interface Lab {
  /** This lab's NATS prefix: its bucket, stream and subjects, removed by close(). */
  prefix: string;
  /** Starts one replica (the same data dir and port again after a stop, when given). */
  startReplica(replicaId: string, options?: { dataDir?: string; port?: number; env?: Record<string, string> }): Promise<ServerProcess>;
  close(): Promise<void>;
}

/** A lab of replicas on the machine's NATS; leaseS is the node claims' lease (short: failover in seconds). */
export function lab(leaseS: number): Lab {
  const prefix = `t${crypto.randomBytes(6).toString('hex')}`;
  return {
    prefix,
    startReplica: (replicaId, options = {}) => startServer({
      dataDir: options.dataDir, port: options.port,
      env: { DVIC_NATS_URL: NATS_URL, DVIC_NATS_PREFIX: prefix, DVIC_REPLICA_ID: replicaId, DVIC_CLUSTER_LEASE_S: String(leaseS), ...options.env },
    }),
    async close() {
      const nc = await connect({ servers: NATS_URL });
      const jsm = await nc.jetstreamManager();
      for (const stream of [`KV_${prefix}_node_holders`, `${prefix}_live_events`]) await jsm.streams.delete(stream).catch(() => false);
      await nc.close();
    },
  };
}

/**
 * A second replica's data dir from a running replica's: its database (an online backup: the same
 * users and nodes) and its update-signing key (every replica must sign updates with the key agents
 * got in their welcome). Metrics and search start empty.
 */
export async function copyDataDir(from: string): Promise<string> {
  const to = tempDir();
  const db = new Database(path.join(from, 'dvic.sqlite'));
  try {
    await db.backup(path.join(to, 'dvic.sqlite'));
  } finally {
    db.close();
  }
  fs.copyFileSync(path.join(from, 'update-key.pem'), path.join(to, 'update-key.pem'));
  return to;
}
