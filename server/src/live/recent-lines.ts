import type { FastifyBaseLogger } from 'fastify';
import type { LogsRepository, StoredLog } from '../repositories/logs-repository.js';

/** Demos whose last lines are kept; the least recently written go first. */
const MAX_DEMOS = 10_000;

/**
 * The last lines of each demo, in memory, for what must read them synchronously (an alert carries
 * them). Fed with every committed batch; a demo not seen since the start is read from the store
 * once, in the background (the first alert about it may come without lines).
 */
export class RecentLines {
  private readonly lines = new Map<string, Line[]>();

  constructor(private readonly store: Pick<LogsRepository, 'search'>, private readonly keep: number, private readonly log: FastifyBaseLogger) {}

  /** Records just committed (in id order). */
  add(records: StoredLog[]): void {
    for (const r of records) {
      if (r.source !== 'demo' || r.demo === null) continue;
      const key = keyOf(r.node_id, r.demo);
      const lines = this.lines.get(key) ?? [];
      lines.push(lineOf(r));
      if (lines.length > this.keep) lines.shift();
      this.remember(key, lines);
    }
  }

  /** The demo's last lines, oldest first. */
  of(nodeId: string, demo: string): string[] {
    const key = keyOf(nodeId, demo);
    const lines = this.lines.get(key);
    if (lines) return lines.map((l) => l.text);
    this.remember(key, []);
    void this.load(nodeId, demo, key);
    return [];
  }

  private async load(nodeId: string, demo: string, key: string): Promise<void> {
    try {
      const { records } = await this.store.search({ nodeId, demo, source: 'demo', limit: this.keep });
      // Lines added while reading may be among the stored ones too: by id, once each.
      const added = this.lines.get(key) ?? [];
      const loaded = records.reverse().map(lineOf).filter((l) => !added.some((a) => a.id === l.id));
      this.remember(key, [...loaded, ...added].slice(-this.keep));
    } catch (err) {
      this.lines.delete(key);
      this.log.warn({ err }, 'could not read the last lines of a demo');
    }
  }

  private remember(key: string, lines: Line[]): void {
    this.lines.delete(key);
    this.lines.set(key, lines);
    if (this.lines.size > MAX_DEMOS) this.lines.delete(this.lines.keys().next().value!);
  }
}

const keyOf = (nodeId: string, demo: string) => `${nodeId}\u0000${demo}`;
interface Line { id: number; text: string }
const lineOf = (r: StoredLog): Line => ({ id: r.id, text: `${r.level} ${r.message}`.slice(0, 500) });
