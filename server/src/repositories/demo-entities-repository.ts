import type { DemoActions, DemoExpectation } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';
import { NO_ACTIONS, type DemoSettings } from '../live/demo-state.js';
import type { Schedule } from '../live/lab-schedule.js';

interface Row { id: string; node_id: string; name: string; expected: number; schedule: string | null; notes: string | null; actions: string | null; created_at: number }
type ExpectationRow = Omit<DemoExpectation, 'schedule'> & { schedule: string | null };

const toSettings = (r: Row): DemoSettings => ({
  id: r.id, node_id: r.node_id, name: r.name, expected: r.expected === 1,
  schedule: r.schedule === null ? null : (JSON.parse(r.schedule) as Schedule), notes: r.notes,
  actions: r.actions === null ? NO_ACTIONS : { ...NO_ACTIONS, ...(JSON.parse(r.actions) as Partial<DemoActions>) }, created_at: r.created_at,
});

/** Demos as (node, name): their id and what the lab set on them (expected, schedule, notes). */
export class DemoEntitiesRepository {
  constructor(private readonly sql: Sql) {}

  /** Runs fn once the current transaction (if any) has committed: memory follows the database. */
  afterCommit(fn: () => void): void {
    this.sql.afterCommit(fn);
  }

  async all(): Promise<DemoSettings[]> {
    return (await this.sql.all<Row>('SELECT * FROM demo_entities')).map(toSettings);
  }

  /** Stores a demo's identity and settings (its id, node and name never change). */
  async save(s: DemoSettings): Promise<void> {
    await this.sql.run(`
      INSERT INTO demo_entities (id, node_id, name, expected, schedule, notes, actions, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET expected = excluded.expected, schedule = excluded.schedule, notes = excluded.notes, actions = excluded.actions`,
    [s.id, s.node_id, s.name, s.expected ? 1 : 0, s.schedule && JSON.stringify(s.schedule), s.notes, JSON.stringify(s.actions), s.created_at]);
  }

  async delete(id: string): Promise<void> {
    await this.sql.run('DELETE FROM demo_entities WHERE id = ?', [id]);
  }

  async expectations(): Promise<DemoExpectation[]> {
    return (await this.sql.all<ExpectationRow>('SELECT * FROM demo_expectations ORDER BY created_at'))
      .map((r) => ({ ...r, schedule: r.schedule === null ? null : (JSON.parse(r.schedule) as Schedule) }));
  }

  /** Adds a label rule; false when the same (label, name) rule exists. */
  async addExpectation(e: DemoExpectation): Promise<boolean> {
    const result = await this.sql.run(`
      INSERT INTO demo_expectations (id, label_key, label_value, name, schedule, created_at)
      VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    [e.id, e.label_key, e.label_value, e.name, e.schedule && JSON.stringify(e.schedule), e.created_at]);
    return result.changes === 1;
  }

  async deleteExpectation(id: string): Promise<boolean> {
    return (await this.sql.run('DELETE FROM demo_expectations WHERE id = ?', [id])).changes === 1;
  }
}
