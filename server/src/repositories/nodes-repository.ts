import type { AgentConfig, HardwareState, HostFacts } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';

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

/** What a status write stores (the rest of the row is written by its own kind of change). */
export type NodeStatusRecord = Pick<NodeRecord, 'id' | 'status' | 'statusSince' | 'lastSeen' | 'revokedAt' | 'agentVersion' | 'host'>;

/** What the periodic live-state flush stores. */
export type NodeLiveState = Pick<NodeRecord, 'id' | 'lastSeen' | 'hardware' | 'hardwareAt'>;

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

const FLUSH_LIVE_STATE = 'UPDATE nodes SET last_seen = ?, hardware = ?, hardware_at = ? WHERE id = ?';

export class NodesRepository {
  constructor(private readonly sql: Sql) {}

  /** Runs fn once the current transaction (if any) has committed: memory follows the database. */
  afterCommit(fn: () => void): void {
    this.sql.afterCommit(fn);
  }

  async all(): Promise<NodeRecord[]> {
    return (await this.sql.all<NodeRow>('SELECT * FROM nodes ORDER BY name')).map(toRecord);
  }

  async get(id: string): Promise<NodeRecord | undefined> {
    const row = await this.sql.get<NodeRow>('SELECT * FROM nodes WHERE id = ?', [id]);
    return row && toRecord(row);
  }

  async insert(node: NodeRecord): Promise<void> {
    await this.sql.run(`
      INSERT INTO nodes (id, name, labels, agent_config, public_key, is_local, created_at, revoked_at, status, status_since)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [node.id, node.name, JSON.stringify(node.labels), JSON.stringify(node.agentConfig), node.publicKey, node.isLocal ? 1 : 0,
      node.createdAt, node.revokedAt, node.status, node.statusSince]);
  }

  async updateIdentity(id: string, name: string, labels: Record<string, string>): Promise<void> {
    await this.sql.run('UPDATE nodes SET name = ?, labels = ? WHERE id = ?', [name, JSON.stringify(labels), id]);
  }

  async updateAgentConfig(id: string, config: AgentConfig): Promise<void> {
    await this.sql.run('UPDATE nodes SET agent_config = ? WHERE id = ?', [JSON.stringify(config), id]);
  }

  async updatePublicKey(id: string, publicKeyPem: string): Promise<void> {
    await this.sql.run('UPDATE nodes SET public_key = ? WHERE id = ?', [publicKeyPem, id]);
  }

  /**
   * A revoked node's row is final: a status write made before the revocation (a background one
   * that waited for the disk or for the revoking transaction) must not sign the node in again.
   */
  async updateStatus(node: NodeStatusRecord): Promise<void> {
    await this.sql.run(`
      UPDATE nodes SET status = ?, status_since = ?, last_seen = ?, revoked_at = ?, agent_version = ?, host = ?
      WHERE id = ? AND revoked_at IS NULL`,
    [node.status, node.statusSince, node.lastSeen, node.revokedAt, node.agentVersion, node.host && JSON.stringify(node.host), node.id]);
  }

  /** Writes the latest hardware state and last-seen time of many nodes in one transaction (one statement, many rows). */
  async flushLiveState(nodes: NodeLiveState[]): Promise<void> {
    await this.sql.runMany(FLUSH_LIVE_STATE, nodes.map((n) => [n.lastSeen, n.hardware && JSON.stringify(n.hardware), n.hardwareAt, n.id]));
  }
}
