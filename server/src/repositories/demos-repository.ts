import type { DemoView } from '@dvic/protocol';
import type { Sql, SqlValue } from '../db/sql.js';

export type { DemoView };

interface Row {
  node_id: string; token: string; demo: string; pid: number; start_time: number | null; user: string | null;
  executable: string | null; argv: string | null; container: string | null; alive: number; since: number;
  started_at: number | null; exited_at: number | null; last_line_at: number | null; line_count: number; error_count: number;
  file_uid: number | null; trusted: number; ended: DemoView['ended']; exit_code: number | null;
}

/** Line counters to add to a run. */
export interface LineCounts {
  nodeId: string;
  token: string;
  demo: string;
  lines: number;
  errors: number;
  lastLineAt: number;
  now: number;
}

const toView = (r: Row): DemoView => ({
  node_id: r.node_id, token: r.token, demo: r.demo, pid: r.pid, user: r.user, executable: r.executable,
  argv: r.argv === null ? null : (JSON.parse(r.argv) as string[]), container: r.container === null ? null : (JSON.parse(r.container) as DemoView['container']),
  alive: r.alive === 1, since: r.since, started_at: r.started_at, exited_at: r.exited_at, last_line_at: r.last_line_at,
  line_count: r.line_count, error_count: r.error_count, file_uid: r.file_uid, trusted: r.trusted === 1,
  ended: r.ended ?? null, exit_code: r.exit_code ?? null,
});

// "user" is quoted: a reserved word in PostgreSQL. The counters are not overwritten: countLines owns them.
const UPSERT = `
  INSERT INTO demos (node_id, token, demo, pid, "user", executable, argv, container, alive, since, started_at, exited_at, last_line_at,
    line_count, error_count, file_uid, trusted, ended, exit_code)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (node_id, token) DO UPDATE SET demo = excluded.demo, pid = excluded.pid, "user" = excluded."user",
    executable = excluded.executable, argv = excluded.argv, container = excluded.container, alive = excluded.alive,
    since = excluded.since, started_at = excluded.started_at, exited_at = excluded.exited_at, file_uid = excluded.file_uid,
    trusted = excluded.trusted, ended = excluded.ended, exit_code = excluded.exit_code`;

// Logs may arrive before the demo's state: the row is created here if needed. (CASE, not MAX/GREATEST: both dialects.)
const COUNT_LINES = `
  INSERT INTO demos (node_id, token, demo, pid, alive, since, last_line_at, line_count, error_count)
  VALUES (?, ?, ?, 0, 1, ?, ?, ?, ?)
  ON CONFLICT (node_id, token) DO UPDATE SET line_count = demos.line_count + excluded.line_count,
    error_count = demos.error_count + excluded.error_count,
    last_line_at = CASE WHEN COALESCE(demos.last_line_at, 0) > excluded.last_line_at THEN demos.last_line_at ELSE excluded.last_line_at END`;

const upsertParams = (d: DemoView): SqlValue[] => [
  d.node_id, d.token, d.demo, d.pid, d.user, d.executable, d.argv && JSON.stringify(d.argv), d.container && JSON.stringify(d.container),
  d.alive ? 1 : 0, d.since, d.started_at, d.exited_at, d.last_line_at, d.line_count, d.error_count, d.file_uid, d.trusted ? 1 : 0, d.ended, d.exit_code,
];

export class DemosRepository {
  constructor(private readonly sql: Sql) {}

  async all(): Promise<DemoView[]> {
    return (await this.sql.all<Row>('SELECT * FROM demos')).map(toView);
  }

  async upsert(demo: DemoView): Promise<void> {
    await this.sql.run(UPSERT, upsertParams(demo));
  }

  /** Forgets dead demo rows (their log records stay). */
  async forget(nodeId: string, tokens: string[]): Promise<void> {
    await this.sql.runMany('DELETE FROM demos WHERE node_id = ? AND token = ?', tokens.map((token) => [nodeId, token]));
  }

  /** Adds to the line counters, creating the demo's row if needed (inside the log write transaction). */
  async countLines(c: LineCounts): Promise<void> {
    await this.sql.run(COUNT_LINES, [c.nodeId, c.token, c.demo, c.now, c.lastLineAt, c.lines, c.errors]);
  }
}
