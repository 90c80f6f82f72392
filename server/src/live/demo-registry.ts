import { EventEmitter } from 'node:events';
import type { DemoStateMessage } from '@dvic/protocol';
import type { DemosRepository, DemoView } from '../repositories/demos-repository.js';
import type { StoredLog } from '../repositories/logs-repository.js';
import { writeNow, type WriteScheduler } from '../services/deferred-writes.js';

type ReportedDemo = DemoStateMessage['data']['demos'][number];

export interface DemoRegistryEvents {
  /** Demos that changed, and the tokens of dead ones forgotten. */
  changed: [{ node_id: string; demos: DemoView[]; removed?: string[] }];
  /** Runs that stored lines (their counters, last line or how they ended changed). */
  lines: [{ node_id: string; demos: DemoView[] }];
}

/**
 * The closing record the libraries write on a clean exit or SIGTERM (docs/log-format.md):
 * fields.dvic_end is "exited" or "killed", fields.exit_code the code when known.
 */
export type Closing = { ended: 'exited' | 'killed'; exit_code: number | null };

export function closingOf(record: Pick<StoredLog, 'fields'>): Closing | null {
  const end = record.fields?.dvic_end;
  if (end !== 'exited' && end !== 'killed') return null;
  const code = record.fields?.exit_code;
  return { ended: end, exit_code: typeof code === 'number' && Number.isInteger(code) ? code : null };
}

/** The longest last line kept per run (the demos page shows it). */
const LAST_LINE_CHARS = 1024;

/** Ended runs kept per demo (the newest: its restarts and time line); older ones are forgotten. */
export const MAX_DEAD_RUNS_PER_DEMO = 20;
/** And per node, over all its demos. */
export const MAX_DEAD_RUNS_PER_NODE = 1000;

/** The demo a log batch belongs to. */
export interface DemoRef {
  nodeId: string;
  token: string;
  name: string;
}

function lineCounts(records: StoredLog[]): { lines: number; errors: number; lastLineAt: number } {
  let errors = 0;
  let lastLineAt = 0;
  let lines = 0;
  for (const r of records) {
    if (closingOf(r)) continue; // a marker the library wrote, not a line of the demo
    lines++;
    if (r.level === 'ERROR' || r.level === 'FATAL') errors++;
    if (r.ts > lastLineAt) lastLineAt = r.ts;
  }
  return { lines, errors, lastLineAt };
}

const parseTime = (text: string | undefined): number | null => {
  if (!text) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
};

/**
 * The demo process table of every node, in memory and written through. Liveness comes from the
 * agent's demo.state messages; line counters from stored log batches. Reads are synchronous, from
 * memory; the rows follow asynchronously (deferred writes keep their order per run and wait for
 * a full disk). `applyRuns` and `countLines` change memory and tell listeners: the same for a
 * change seen here and one another replica made.
 */
export class DemoRegistry extends EventEmitter<DemoRegistryEvents> {
  private readonly byNode = new Map<string, Map<string, DemoView>>();
  /** The latest message of each run, since the server started (token -> text). */
  private readonly lastLines = new Map<string, string>();

  constructor(private readonly repository: DemosRepository, private readonly deferred: WriteScheduler = writeNow) {
    super();
  }

  /** Reads the runs from the database (once, before use). */
  async load(): Promise<this> {
    for (const demo of await this.repository.all()) this.table(demo.node_id).set(demo.token, demo);
    return this;
  }

  list(nodeId: string): DemoView[] {
    return [...(this.byNode.get(nodeId)?.values() ?? [])].sort((a, b) => a.demo.localeCompare(b.demo) || b.since - a.since);
  }

  /** Every node with demo runs. */
  nodeIds(): string[] {
    return [...this.byNode.keys()];
  }

  /** The runs of one demo, newest first. */
  runsOf(nodeId: string, name: string): DemoView[] {
    const runs = [...(this.byNode.get(nodeId)?.values() ?? [])].filter((d) => d.demo === name);
    // A live run is newer than any ended one (without a start time, `since` is when it died).
    return runs.sort((a, b) => Number(b.alive) - Number(a.alive) || (b.started_at ?? b.since) - (a.started_at ?? a.since));
  }

  lastLine(token: string): string | null {
    return this.lastLines.get(token) ?? null;
  }

  /** Forgets every run of a demo (its logs stay). */
  forgetDemo(nodeId: string, name: string): void {
    const tokens = this.runsOf(nodeId, name).map((d) => d.token);
    if (!tokens.length) return;
    this.writeForget(nodeId, tokens);
    this.applyRuns(nodeId, [], tokens);
  }

  summary(nodeId: string): { total: number; alive: number } {
    const demos = [...(this.byNode.get(nodeId)?.values() ?? [])];
    return { total: demos.length, alive: demos.filter((d) => d.alive).length };
  }

  /** Applies a demo.state report; returns (and announces) the demos that changed. */
  applyState(nodeId: string, full: boolean, reported: ReportedDemo[], now = Date.now()): DemoView[] {
    const table = this.table(nodeId);
    const changed: DemoView[] = [];
    const seen = new Set<string>();
    for (const r of reported) {
      seen.add(r.token);
      const before = table.get(r.token);
      const next = this.merge(nodeId, before, r, now);
      if (!before || JSON.stringify(before) !== JSON.stringify(next)) changed.push(next);
    }
    if (full) {
      for (const demo of table.values()) {
        if (!seen.has(demo.token) && demo.alive) changed.push({ ...demo, alive: false, since: now, exited_at: demo.exited_at ?? now, ended: demo.ended ?? 'vanished' });
      }
    }
    const removed = this.oldRuns(table, changed);
    const gone = new Set(removed);
    // Memory is what the API shows; the rows follow now, or once the disk has room.
    for (const demo of changed) {
      if (!gone.has(demo.token)) this.deferred.background(`demo:${nodeId}:${demo.token}`, () => this.repository.upsert(demo));
    }
    this.writeForget(nodeId, removed);
    this.applyRuns(nodeId, changed, removed);
    return changed;
  }

  /** Runs that changed and runs forgotten, on one node (here or on another replica): memory follows, listeners hear it. */
  applyRuns(nodeId: string, demos: DemoView[], removed: string[] = []): void {
    const table = this.table(nodeId);
    for (const demo of demos) table.set(demo.token, demo);
    for (const token of removed) {
      table.delete(token);
      this.lastLines.delete(token);
    }
    if (demos.length || removed.length) this.emit('changed', { node_id: nodeId, demos, ...(removed.length ? { removed } : {}) });
  }

  /**
   * Another replica's runs of a node (cluster/remote-state.ts): it wrote the database, so this is
   * memory only and told to nobody (the demo catalog would make demo rows of its own from it).
   */
  applyRemote({ node_id: nodeId, demos, removed }: { node_id: string; demos: DemoView[]; removed?: string[] }, lastLine?: { token: string; text: string }): void {
    const table = this.table(nodeId);
    for (const demo of demos) table.set(demo.token, demo);
    for (const token of removed ?? []) {
      table.delete(token);
      this.lastLines.delete(token);
    }
    if (lastLine) this.lastLines.set(lastLine.token, lastLine.text);
  }

  /**
   * Demo processes that come and go by the thousand must not pile up: a node keeps every live run
   * and the newest ended runs of each demo (their logs stay stored). The runs to forget once
   * `changed` is applied.
   */
  private oldRuns(table: Map<string, DemoView>, changed: DemoView[]): string[] {
    const runs = new Map(table);
    for (const demo of changed) runs.set(demo.token, demo);
    const dead = [...runs.values()].filter((d) => !d.alive);
    const perDemo = new Map<string, number>();
    for (const d of dead) perDemo.set(d.demo, (perDemo.get(d.demo) ?? 0) + 1);
    if (dead.length <= MAX_DEAD_RUNS_PER_NODE && [...perDemo.values()].every((n) => n <= MAX_DEAD_RUNS_PER_DEMO)) return [];
    const kept = new Map<string, number>();
    return dead.sort((a, b) => b.since - a.since).filter((d, i) => {
      const n = (kept.get(d.demo) ?? 0) + 1;
      kept.set(d.demo, n);
      return n > MAX_DEAD_RUNS_PER_DEMO || i >= MAX_DEAD_RUNS_PER_NODE;
    }).map((d) => d.token);
  }

  /** Adds stored lines to the demo's counters in the database (inside the log write transaction). */
  async storeLineCounts(demo: DemoRef, records: StoredLog[], now = Date.now()): Promise<void> {
    await this.repository.countLines({ ...demo, demo: demo.name, ...lineCounts(records), now });
  }

  /** The same, in memory, once the transaction committed (here, or on the replica that stored them). */
  countLines(demo: DemoRef, records: StoredLog[], now = Date.now()): void {
    const view = this.runOf(demo, now);
    const counts = lineCounts(records);
    view.line_count += counts.lines;
    view.error_count += counts.errors;
    view.last_line_at = Math.max(view.last_line_at ?? 0, counts.lastLineAt);
    const last = records.at(-1);
    if (last) this.lastLines.set(demo.token, last.message.slice(0, LAST_LINE_CHARS));
    this.emit('lines', { node_id: demo.nodeId, demos: [view] });
  }

  /** How a run ended, from its closing record (which is not stored as a line). */
  recordClosing(demo: DemoRef, closing: Closing, now = Date.now()): void {
    const view = Object.assign(this.runOf(demo, now), closing);
    this.deferred.background(`demo:${demo.nodeId}:${demo.token}`, () => this.repository.upsert(view));
    this.emit('lines', { node_id: demo.nodeId, demos: [view] });
  }

  /** Deletes runs' rows, each after the writes of its run still on their way (one key per row: the latest wins). */
  private writeForget(nodeId: string, tokens: string[]): void {
    for (const token of tokens) this.deferred.background(`demo:${nodeId}:${token}`, () => this.repository.forget(nodeId, [token]));
  }

  /** The run a log batch belongs to (logs may come before the agent's state says it runs). */
  private runOf(demo: DemoRef, now: number): DemoView {
    const table = this.table(demo.nodeId);
    let view = table.get(demo.token);
    if (!view) {
      view = {
        node_id: demo.nodeId, token: demo.token, demo: demo.name, pid: 0, user: null, executable: null, argv: null, container: null,
        alive: true, since: now, started_at: null, exited_at: null, last_line_at: null, line_count: 0, error_count: 0, file_uid: null, trusted: true,
        ended: null, exit_code: null,
      };
      table.set(demo.token, view);
    }
    return view;
  }

  private merge(nodeId: string, before: DemoView | undefined, r: ReportedDemo, now: number): DemoView {
    const aliveChanged = !before || before.alive !== r.alive;
    return {
      node_id: nodeId, token: r.token, demo: r.demo, pid: r.pid, user: r.user ?? null, executable: r.executable ?? null,
      argv: r.argv ?? null, container: r.container ?? null, alive: r.alive,
      since: aliveChanged ? (r.alive ? parseTime(r.started_at) ?? now : parseTime(r.exited_at) ?? now) : before.since,
      started_at: parseTime(r.started_at) ?? before?.started_at ?? null,
      exited_at: r.alive ? null : parseTime(r.exited_at) ?? before?.exited_at ?? now,
      last_line_at: before?.last_line_at ?? null, line_count: before?.line_count ?? 0, error_count: before?.error_count ?? 0,
      file_uid: r.file_uid ?? null, trusted: r.trusted ?? true,
      // A closing record may come before or after the agent sees the process gone.
      ended: r.alive ? before?.ended ?? null : before?.ended ?? 'vanished', exit_code: before?.exit_code ?? null,
    };
  }

  private table(nodeId: string): Map<string, DemoView> {
    let table = this.byNode.get(nodeId);
    if (!table) this.byNode.set(nodeId, (table = new Map()));
    return table;
  }
}
