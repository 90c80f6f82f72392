import type { DemoActions, DemoView, LabDemo } from '@dvic/protocol';
import { inSchedule, labTime, type Schedule } from './lab-schedule.js';

/** How demos are judged (DVIC_* settings, README). */
export interface DemoPolicy {
  timeZone: string;
  /** A run that begins this soon after the last one ended makes the demo "restarting" this long. */
  restartWindowMs: number;
  crashLoopRestarts: number;
  crashLoopWindowMs: number;
  forgetAfterMs: number;
}

export const DEFAULT_POLICY: DemoPolicy = {
  timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone, restartWindowMs: 10_000,
  crashLoopRestarts: 5, crashLoopWindowMs: 10 * 60_000, forgetAfterMs: 7 * 86_400_000,
};

/** What a demo is apart from its runs: its identity and what the lab set on it. */
export interface DemoSettings {
  id: string;
  node_id: string;
  name: string;
  expected: boolean;
  schedule: Schedule | null;
  notes: string | null;
  actions: DemoActions;
  created_at: number;
}

export const NO_ACTIONS: DemoActions = { start: null, stop: null, restart: null };

/** What the demo's node and the label rules add. */
export interface DemoContext {
  now: number;
  nodeRevoked: boolean;
  /** The schedule of a label rule that expects this demo on its node (null schedule: always), or undefined. */
  rule: { schedule: Schedule | null } | undefined;
  lastLine: string | null;
}

const startOf = (run: DemoView): number => run.started_at ?? run.since;

function runState(latest: DemoView | undefined, previous: DemoView | undefined, now: number, policy: DemoPolicy): LabDemo['state'] {
  if (!latest) return 'stopped';
  if (latest.alive) {
    const gap = previous?.exited_at === null || previous?.exited_at === undefined ? Infinity : startOf(latest) - previous.exited_at;
    return gap <= policy.restartWindowMs && now - startOf(latest) < policy.restartWindowMs ? 'restarting' : 'running';
  }
  const clean = latest.ended === 'killed' || (latest.ended === 'exited' && (latest.exit_code ?? 0) === 0);
  return clean ? 'stopped' : 'crashed';
}

/** A demo as the API shows it, from its settings and its runs (newest first). Pure. */
export function labDemo(settings: DemoSettings, runs: DemoView[], ctx: DemoContext, policy: DemoPolicy): LabDemo {
  const [latest, previous] = runs;
  const state = runState(latest, previous, ctx.now, policy);
  const expectedBy = settings.expected ? 'demo' : ctx.rule ? 'label' : null;
  const schedule = settings.expected ? settings.schedule : ctx.rule?.schedule ?? settings.schedule;
  const now = labTime(ctx.now, policy.timeZone);
  const open = inSchedule(schedule, now);
  const restartsSince = (since: number) => runs.slice(0, -1).filter((r) => startOf(r) >= since).length;
  const today = runs.slice(0, -1).filter((r) => labTime(startOf(r), policy.timeZone).date === now.date).length;
  const lines = runs.reduce((sum, r) => ({ lines: sum.lines + r.line_count, errors: sum.errors + r.error_count }), { lines: 0, errors: 0 });
  const lastLineAt = runs.reduce<number | null>((at, r) => (r.last_line_at !== null && r.last_line_at > (at ?? -1) ? r.last_line_at : at), null);
  return {
    id: settings.id, node_id: settings.node_id, name: settings.name, state,
    down: expectedBy !== null && open && !ctx.nodeRevoked && state !== 'running' && state !== 'restarting',
    expected: expectedBy !== null, expected_by: expectedBy, schedule, in_schedule: open, notes: settings.notes, actions: settings.actions,
    restarts: Math.max(0, runs.length - 1), restarts_today: today,
    crash_loop: restartsSince(ctx.now - policy.crashLoopWindowMs) > policy.crashLoopRestarts,
    started_at: latest ? startOf(latest) : null, ended_at: latest && !latest.alive ? latest.exited_at ?? latest.since : null,
    last_line: ctx.lastLine, last_line_at: lastLineAt, line_count: lines.lines, error_count: lines.errors,
    last_activity_at: Math.max(settings.created_at, ...runs.map((r) => Math.max(startOf(r), r.exited_at ?? 0, r.last_line_at ?? 0))),
    runs,
  };
}
