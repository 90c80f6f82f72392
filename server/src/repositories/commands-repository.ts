import type { Db } from '../db/database.js';
import { Filters } from '../db/filters.js';

export type CommandStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'timed_out' | 'cancelled' | 'lost' | 'expired' | 'error';
export const FINAL_STATUSES: ReadonlySet<CommandStatus> = new Set(['succeeded', 'failed', 'timed_out', 'cancelled', 'lost', 'expired', 'error']);

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

/** A command as the API shows it (the commandView protocol definition). */
export interface CommandView {
  id: string;
  batch_id: string | null;
  node_id: string;
  user: string;
  source_ip: string | null;
  command: string;
  status: CommandStatus;
  exit_code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  error: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  duration_ms: number | null;
  expires_at: number | null;
}

export interface CommandRecord extends CommandView {
  spec: CommandSpec;
  userId: number | null;
}

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
  /** Substring of the command text. */
  q?: string;
  limit: number;
  before?: { createdAt: number; id: string };
}

export class CommandsRepository {
  constructor(private readonly db: Db) {}

  /** Records new commands in one transaction: all or none. */
  insertAll(commands: CommandRecord[]): void {
    const insert = this.db.prepare(`
      INSERT INTO commands (id, batch_id, node_id, user_id, username, source_ip, spec, display, status, exit_code, signal,
        stdout, stderr, truncated, error, created_at, started_at, finished_at, duration_ms, expires_at)
      VALUES (@id, @batch_id, @node_id, @userId, @user, @source_ip, @spec, @command, @status, @exit_code, @signal,
        @stdout, @stderr, @truncated, @error, @created_at, @started_at, @finished_at, @duration_ms, @expires_at)`);
    this.db.transaction(() => {
      for (const c of commands) insert.run({ ...c, spec: JSON.stringify(c.spec), truncated: c.truncated ? 1 : 0 });
    })();
  }

  update(c: CommandView): void {
    this.db.prepare(`
      UPDATE commands SET status = @status, exit_code = @exit_code, signal = @signal, stdout = @stdout, stderr = @stderr,
        truncated = @truncated, error = @error, started_at = @started_at, finished_at = @finished_at, duration_ms = @duration_ms
      WHERE id = @id`).run({ ...c, truncated: c.truncated ? 1 : 0 });
  }

  get(id: string): CommandRecord | undefined {
    const row = this.db.prepare('SELECT * FROM commands WHERE id = ?').get(id) as Row | undefined;
    return row && toRecord(row);
  }

  /** Commands still queued or running (after a restart: to mark lost or resume the queue). */
  unfinished(): CommandRecord[] {
    return (this.db.prepare("SELECT * FROM commands WHERE status IN ('queued', 'running')").all() as Row[]).map(toRecord);
  }

  search(query: CommandQuery): { commands: CommandRecord[]; more: boolean } {
    const filters = new Filters({ limit: query.limit + 1 })
      .add('node_id = @nodeId', 'nodeId', query.nodeId)
      .add('batch_id = @batchId', 'batchId', query.batchId)
      .add('username = @user', 'user', query.user)
      .add('status = @status', 'status', query.status)
      .add('instr(lower(display), lower(@q))', 'q', query.q);
    if (query.before) {
      filters.addAll('(created_at < @beforeAt OR (created_at = @beforeAt AND id < @beforeId))', { beforeAt: query.before.createdAt, beforeId: query.before.id });
    }
    const rows = this.db.prepare(`SELECT * FROM commands ${filters.sql} ORDER BY created_at DESC, id DESC LIMIT @limit`).all(filters.params) as Row[];
    return { commands: rows.slice(0, query.limit).map(toRecord), more: rows.length > query.limit };
  }
}
