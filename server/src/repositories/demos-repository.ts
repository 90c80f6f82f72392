import type { DemoView } from '@dvic/protocol';
import type { Db } from '../db/database.js';

export type { DemoView };

interface Row {
  node_id: string; token: string; demo: string; pid: number; start_time: number | null; user: string | null;
  executable: string | null; argv: string | null; container: string | null; alive: number; since: number;
  started_at: number | null; exited_at: number | null; last_line_at: number | null; line_count: number; error_count: number;
  file_uid: number | null; trusted: number; ended: DemoView['ended']; exit_code: number | null;
}

const toView = (r: Row): DemoView => ({
  node_id: r.node_id, token: r.token, demo: r.demo, pid: r.pid, user: r.user, executable: r.executable,
  argv: r.argv === null ? null : (JSON.parse(r.argv) as string[]), container: r.container === null ? null : (JSON.parse(r.container) as DemoView['container']),
  alive: r.alive === 1, since: r.since, started_at: r.started_at, exited_at: r.exited_at, last_line_at: r.last_line_at,
  line_count: r.line_count, error_count: r.error_count, file_uid: r.file_uid, trusted: r.trusted === 1,
  ended: r.ended ?? null, exit_code: r.exit_code ?? null,
});

export class DemosRepository {
  private readonly upsertStatement;
  private readonly countLinesStatement;

  constructor(private readonly db: Db) {
    this.upsertStatement = db.prepare(`
      INSERT INTO demos (node_id, token, demo, pid, user, executable, argv, container, alive, since, started_at, exited_at, last_line_at, line_count, error_count, file_uid, trusted, ended, exit_code)
      VALUES (@node_id, @token, @demo, @pid, @user, @executable, @argv, @container, @alive, @since, @started_at, @exited_at, @last_line_at, @line_count, @error_count, @file_uid, @trusted, @ended, @exit_code)
      ON CONFLICT (node_id, token) DO UPDATE SET demo = excluded.demo, pid = excluded.pid, user = excluded.user,
        executable = excluded.executable, argv = excluded.argv, container = excluded.container, alive = excluded.alive,
        since = excluded.since, started_at = excluded.started_at, exited_at = excluded.exited_at, file_uid = excluded.file_uid,
        trusted = excluded.trusted, ended = excluded.ended, exit_code = excluded.exit_code`);
    // Logs may arrive before the demo's state: the row is created here if needed.
    this.countLinesStatement = db.prepare(`
      INSERT INTO demos (node_id, token, demo, pid, alive, since, last_line_at, line_count, error_count)
      VALUES (@nodeId, @token, @demo, 0, 1, @now, @lastLineAt, @lines, @errors)
      ON CONFLICT (node_id, token) DO UPDATE SET line_count = line_count + @lines, error_count = error_count + @errors,
        last_line_at = MAX(COALESCE(last_line_at, 0), @lastLineAt)`);
  }

  all(): DemoView[] {
    return (this.db.prepare('SELECT * FROM demos').all() as Row[]).map(toView);
  }

  upsert(demo: DemoView): void {
    this.upsertStatement.run({
      ...demo, alive: demo.alive ? 1 : 0, trusted: demo.trusted ? 1 : 0, argv: demo.argv && JSON.stringify(demo.argv), container: demo.container && JSON.stringify(demo.container),
    });
  }

  /** Forgets dead demo rows (their log records stay). */
  forget(nodeId: string, tokens: string[]): void {
    const remove = this.db.prepare('DELETE FROM demos WHERE node_id = ? AND token = ?');
    this.db.transaction(() => { for (const token of tokens) remove.run(nodeId, token); })();
  }

  /** Adds to the line counters, creating the demo's row if needed (inside the log write transaction). */
  countLines(c: { nodeId: string; token: string; demo: string; lines: number; errors: number; lastLineAt: number; now: number }): void {
    this.countLinesStatement.run(c);
  }
}
