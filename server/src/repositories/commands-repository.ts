import type { CommandStatus, CommandView } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';
import { firstMatching } from '../db/text-match.js';
import { Where } from '../db/where.js';

/** What to run: the exec.request payload without its id. */
export interface CommandSpec {
  argv?: string[];
  command?: string;
  cwd?: string;
  env?: Record<string, string>;
  user?: string;
  stdin?: string;
  timeout_s: number;
}

/** A command as the server keeps it: what the API shows, plus what to run and who asked. */
export type CommandRecord = CommandView & {
  spec: CommandSpec;
  userId: number | null;
};

interface Row {
  id: string; batch_id: string | null; node_id: string; user_id: number | null; username: string; source_ip: string | null;
  spec: string; display: string; status: CommandStatus; exit_code: number | null; signal: string | null; stdout: string; stderr: string;
  truncated: number; error: string | null; created_at: number; started_at: number | null; finished_at: number | null;
  duration_ms: number | null; expires_at: number | null;
}

const toRecord = (r: Row): CommandRecord => ({
  id: r.id, batch_id: r.batch_id, node_id: r.node_id, user: r.username, userId: r.user_id, source_ip: r.source_ip,
  command: r.display, spec: JSON.parse(r.spec) as CommandSpec, status: r.status, exit_code: r.exit_code, signal: r.signal,
  stdout: r.stdout, stderr: r.stderr, truncated: r.truncated === 1, error: r.error, created_at: r.created_at,
  started_at: r.started_at, finished_at: r.finished_at, duration_ms: r.duration_ms, expires_at: r.expires_at,
});

export interface CommandQuery {
  nodeId?: string;
  batchId?: string;
  user?: string;
  status?: CommandStatus;
  /** Search text (search/text-query.ts). */
  q?: string;
  limit: number;
  before?: { createdAt: number; id: string };
}

/** What a PostgreSQL `q` scan reads of each command: not its output (up to megabytes a row). */
const SCANNED_COLUMNS = 'id, created_at, display';
type Scanned = Pick<Row, 'id' | 'created_at' | 'display'>;

const COLUMNS = `id, batch_id, node_id, user_id, username, source_ip, spec, display, status, exit_code, signal,
  stdout, stderr, truncated, error, created_at, started_at, finished_at, duration_ms, expires_at`;

export class CommandsRepository {
  /** owner: the replica whose process runs the commands this one inserts (docs/scale-out.md). */
  constructor(private readonly sql: Sql, private readonly owner = '') {}

  /** Runs fn once the current transaction (if any) has committed: nothing is sent for a command the database refused. */
  afterCommit(fn: () => void): void {
    this.sql.afterCommit(fn);
  }

  /** Records new commands (a batch over many nodes: one statement, one transaction). */
  async insert(records: readonly CommandRecord[]): Promise<void> {
    await this.sql.runMany(`INSERT INTO commands (${COLUMNS}, owner_replica) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, records.map((c) => [
      c.id, c.batch_id, c.node_id, c.userId, c.user, c.source_ip, JSON.stringify(c.spec), c.command, c.status, c.exit_code, c.signal,
      c.stdout, c.stderr, c.truncated ? 1 : 0, c.error, c.created_at, c.started_at, c.finished_at, c.duration_ms, c.expires_at, this.owner,
    ]));
  }

  async update(c: CommandView): Promise<void> {
    await this.sql.run(`
      UPDATE commands SET status = ?, exit_code = ?, signal = ?, stdout = ?, stderr = ?, truncated = ?, error = ?, started_at = ?,
        finished_at = ?, duration_ms = ?
      WHERE id = ?`, [c.status, c.exit_code, c.signal, c.stdout, c.stderr, c.truncated ? 1 : 0, c.error, c.started_at, c.finished_at, c.duration_ms, c.id]);
  }

  async get(id: string): Promise<CommandRecord | undefined> {
    const row = await this.sql.get<Row>(`SELECT ${COLUMNS} FROM commands WHERE id = ?`, [id]);
    return row && toRecord(row);
  }

  /** Commands still queued or running (after a restart: to mark lost or resume the queue), of one owner or of all. */
  async unfinished(owner?: string): Promise<CommandRecord[]> {
    const where = new Where().addAll("status IN ('queued', 'running')").add('owner_replica = ?', owner);
    return (await this.sql.all<Row>(`SELECT ${COLUMNS} FROM commands ${where.sql}`, where.params)).map(toRecord);
  }

  /** The replicas that own queued or running commands. */
  async unfinishedOwners(): Promise<string[]> {
    return (await this.sql.all<{ owner_replica: string }>("SELECT DISTINCT owner_replica FROM commands WHERE status IN ('queued', 'running')")).map((r) => r.owner_replica);
  }

  /**
   * Ends the queued and running commands of a replica that is gone (their results went to it):
   * lost. Conditional on the status, so a result stored meanwhile stays. Returns how many.
   */
  async loseOwnedBy(owner: string, error: string): Promise<number> {
    const now = Date.now();
    return (await this.sql.run(`UPDATE commands SET status = 'lost', error = ?, finished_at = ?,
        duration_ms = CASE WHEN started_at IS NULL THEN NULL ELSE ? - started_at END
      WHERE owner_replica = ? AND status IN ('queued', 'running')`, [error, now, now, owner])).changes;
  }

  async search(query: CommandQuery): Promise<{ commands: CommandRecord[]; more: boolean }> {
    const where = new Where()
      .add('node_id = ?', query.nodeId)
      .add('batch_id = ?', query.batchId)
      .add('username = ?', query.user)
      .add('status = ?', query.status);
    const before = (w: Where, at: { createdAt: number; id: string } | undefined) =>
      (at ? w.add('(created_at < ? OR (created_at = ? AND id < ?))', at.createdAt, at.createdAt, at.id) : w);
    before(where, query.before);
    const rows = query.q !== undefined && this.sql.dialect === 'postgres'
      ? await this.byIds(await firstMatching(query.q, query.limit + 1, (r: Scanned) => r.display,
        (after, n) => this.page<Scanned>(after ? before(where.copy(), { createdAt: after.created_at, id: after.id }) : where, n, SCANNED_COLUMNS)))
      : await this.page<Row>(where.add('dvic_match(?, display)', query.q), query.limit + 1);
    return { commands: rows.slice(0, query.limit).map(toRecord), more: rows.length > query.limit };
  }

  private page<R>(where: Where, limit: number, columns = COLUMNS): Promise<R[]> {
    return this.sql.all<R>(`SELECT ${columns} FROM commands ${where.sql} ORDER BY created_at DESC, id DESC LIMIT ?`, [...where.params, limit]);
  }

  /** The whole rows of the commands a scan found, in its order. */
  private async byIds(found: Scanned[]): Promise<Row[]> {
    if (!found.length) return [];
    const rows = await this.sql.all<Row>(`SELECT ${COLUMNS} FROM commands WHERE id IN (${found.map(() => '?').join(', ')})`, found.map((r) => r.id));
    const byId = new Map(rows.map((r) => [r.id, r]));
    return found.flatMap((r) => byId.get(r.id) ?? []);
  }
}
