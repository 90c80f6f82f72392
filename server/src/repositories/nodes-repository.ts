import type { AgentConfig, HardwareState, HostFacts } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import { afterCommit } from '../db/transaction.js';

export type NodeStatus = 'online' | 'offline' | 'revoked';

export interface NodeRecord {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** Settings pushed to the agent (welcome and config.push); unset ones use the server default. */
  agentConfig: AgentConfig;
  publicKey: string;
  isLocal: boolean;
  createdAt: number;
  revokedAt: number | null;
  status: NodeStatus;
  statusSince: number;
  lastSeen: number | null;
  agentVersion: string | null;
  host: HostFacts | null;
  hardware: HardwareState | null;
  hardwareAt: number | null;
}

interface NodeRow {
  id: string; name: string; labels: string; agent_config: string; public_key: string; is_local: number; created_at: number;
  revoked_at: number | null; status: NodeStatus; status_since: number; last_seen: number | null;
  agent_version: string | null; host: string | null; hardware: string | null; hardware_at: number | null;
}

const parse = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

function toRecord(r: NodeRow): NodeRecord {
  return {
    id: r.id, name: r.name, labels: JSON.parse(r.labels) as Record<string, string>,
    agentConfig: JSON.parse(r.agent_config) as AgentConfig, publicKey: r.public_key,
    isLocal: r.is_local === 1, createdAt: r.created_at, revokedAt: r.revoked_at, status: r.status,
    statusSince: r.status_since, lastSeen: r.last_seen, agentVersion: r.agent_version,
    host: parse<HostFacts>(r.host), hardware: parse<HardwareState>(r.hardware), hardwareAt: r.hardware_at,
  };
}

export class NodesRepository {
  constructor(private readonly db: Db) {}

  /** Runs fn once the current transaction (if any) has committed: memory follows the database. */
  afterCommit(fn: () => void): void {
    afterCommit(this.db, fn);
  }

  all(): NodeRecord[] {
    return (this.db.prepare('SELECT * FROM nodes ORDER BY name').all() as NodeRow[]).map(toRecord);
  }

  insert(node: NodeRecord): void {
    this.db.prepare(`
      INSERT INTO nodes (id, name, labels, public_key, is_local, created_at, revoked_at, status, status_since)
      VALUES (@id, @name, @labels, @publicKey, @isLocal, @createdAt, @revokedAt, @status, @statusSince)`)
      .run({ ...node, labels: JSON.stringify(node.labels), isLocal: node.isLocal ? 1 : 0 });
  }

  updateIdentity(id: string, name: string, labels: Record<string, string>): void {
    this.db.prepare('UPDATE nodes SET name = ?, labels = ? WHERE id = ?').run(name, JSON.stringify(labels), id);
  }

  updateAgentConfig(id: string, config: AgentConfig): void {
    this.db.prepare('UPDATE nodes SET agent_config = ? WHERE id = ?').run(JSON.stringify(config), id);
  }

  updatePublicKey(id: string, publicKeyPem: string): void {
    this.db.prepare('UPDATE nodes SET public_key = ? WHERE id = ?').run(publicKeyPem, id);
  }

  updateStatus(node: Pick<NodeRecord, 'id' | 'status' | 'statusSince' | 'lastSeen' | 'revokedAt' | 'agentVersion' | 'host'>): void {
    this.db.prepare(`
      UPDATE nodes SET status = @status, status_since = @statusSince, last_seen = @lastSeen, revoked_at = @revokedAt,
        agent_version = @agentVersion, host = @host WHERE id = @id`)
      .run({ ...node, host: node.host && JSON.stringify(node.host) });
  }

  /** Writes the latest hardware state and last-seen time of many nodes in one transaction. */
  flushLiveState(nodes: Pick<NodeRecord, 'id' | 'lastSeen' | 'hardware' | 'hardwareAt'>[]): void {
    const statement = this.db.prepare('UPDATE nodes SET last_seen = ?, hardware = ?, hardware_at = ? WHERE id = ?');
    this.db.transaction(() => {
      for (const n of nodes) statement.run(n.lastSeen, n.hardware && JSON.stringify(n.hardware), n.hardwareAt, n.id);
    })();
  }
}
