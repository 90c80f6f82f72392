import type { DemoActions, DemoExpectation } from '@dvic/protocol';
import type { Db } from '../db/database.js';
import { NO_ACTIONS, type DemoSettings } from '../live/demo-state.js';
import type { Schedule } from '../live/lab-schedule.js';

interface Row { id: string; node_id: string; name: string; expected: number; schedule: string | null; notes: string | null; actions: string | null; created_at: number }

const toSettings = (r: Row): DemoSettings => ({
  id: r.id, node_id: r.node_id, name: r.name, expected: r.expected === 1,
  schedule: r.schedule === null ? null : (JSON.parse(r.schedule) as Schedule), notes: r.notes,
  actions: r.actions === null ? NO_ACTIONS : { ...NO_ACTIONS, ...(JSON.parse(r.actions) as Partial<DemoActions>) }, created_at: r.created_at,
});

/** Demos as (node, name): their id and what the lab set on them (expected, schedule, notes). */
export class DemoEntitiesRepository {
  constructor(private readonly db: Db) {}

  all(): DemoSettings[] {
    return (this.db.prepare('SELECT * FROM demo_entities').all() as Row[]).map(toSettings);
  }

  save(s: DemoSettings): void {
    this.db.prepare(`
      INSERT INTO demo_entities (id, node_id, name, expected, schedule, notes, actions, created_at)
      VALUES (@id, @node_id, @name, @expected, @schedule, @notes, @actions, @created_at)
      ON CONFLICT (id) DO UPDATE SET expected = excluded.expected, schedule = excluded.schedule, notes = excluded.notes, actions = excluded.actions`)
      .run({ ...s, expected: s.expected ? 1 : 0, schedule: s.schedule && JSON.stringify(s.schedule), actions: JSON.stringify(s.actions) });
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM demo_entities WHERE id = ?').run(id);
  }

  expectations(): DemoExpectation[] {
    return (this.db.prepare('SELECT * FROM demo_expectations ORDER BY created_at').all() as (Omit<DemoExpectation, 'schedule'> & { schedule: string | null })[])
      .map((r) => ({ ...r, schedule: r.schedule === null ? null : (JSON.parse(r.schedule) as Schedule) }));
  }

  /** Adds a label rule; false when the same (label, name) rule exists. */
  addExpectation(e: DemoExpectation): boolean {
    const result = this.db.prepare(`
      INSERT INTO demo_expectations (id, label_key, label_value, name, schedule, created_at)
      VALUES (@id, @label_key, @label_value, @name, @schedule, @created_at) ON CONFLICT DO NOTHING`)
      .run({ ...e, schedule: e.schedule && JSON.stringify(e.schedule) });
    return result.changes === 1;
  }

  deleteExpectation(id: string): boolean {
    return this.db.prepare('DELETE FROM demo_expectations WHERE id = ?').run(id).changes === 1;
  }
}
