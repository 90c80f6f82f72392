import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { CloseCode } from '@dvic/protocol';
import type { WebSocket } from 'ws';

export interface FdLimits {
  soft: number;
  hard: number;
}

/** "Max open files" of a /proc/<pid>/limits text; null when absent. "unlimited" counts as no limit. */
export function parseFdLimits(text: string): FdLimits | null {
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!match) return null;
  const value = (s: string) => (s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s));
  const limits = { soft: value(match[1]!), hard: value(match[2]!) };
  return Number.isNaN(limits.soft) || Number.isNaN(limits.hard) ? null : limits;
}

export function readFdLimits(file = '/proc/self/limits'): FdLimits | null {
  try {
    return parseFdLimits(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * Raises this process's soft RLIMIT_NOFILE to its hard limit (Node has no setrlimit: util-linux
 * prlimit on our own pid). Node itself raises it at start on Linux today; this makes sure of it
 * and says what it found. Never fails: no prlimit, no /proc, nothing changes.
 */
export function raiseFdLimit(
  read: () => FdLimits | null = readFdLimits,
  run: (file: string, args: string[]) => void = (file, args) => { execFileSync(file, args, { stdio: 'ignore', timeout: 10_000 }); },
): { limits: FdLimits | null; message: string } {
  const before = read();
  if (!before) return { limits: null, message: 'open file limit unknown (no /proc/self/limits)' };
  if (before.soft >= before.hard || !Number.isFinite(before.hard)) {
    return { limits: before, message: `open file limit ${before.soft} (the hard limit)` };
  }
  try {
    run('prlimit', ['--pid', String(process.pid), `--nofile=${before.hard}:${before.hard}`]);
  } catch (err) {
    return { limits: before, message: `open file limit stays ${before.soft} (hard ${before.hard}): prlimit failed (${(err as Error).message.split('\n')[0]})` };
  }
  const after = read() ?? before;
  return { limits: after, message: `open file limit raised from ${before.soft} to ${after.soft} with prlimit` };
}

/** Descriptors kept free for the API, the database and dashboards when none is configured. */
export const defaultFdReserve = (limit: number): number => (Number.isFinite(limit) ? Math.max(64, Math.round(limit * 0.05)) : 0);

/** How often the real count of open descriptors is taken; between two counts, agent sockets are counted as they come and go. */
const RECOUNT_MS = 1000;

/**
 * The file descriptors of the process: a reserve stays free for the REST API, the database and
 * the dashboards, so agent sockets are refused (close code 1013, try again later: the agent backs
 * off) before the process reaches its limit, instead of accept() and SQLite failing with EMFILE.
 */
export class DescriptorBudget {
  agentSocketsRefused = 0;
  private counted = 0;
  private countedAt = Number.NEGATIVE_INFINITY;
  /** Agent sockets opened minus closed since the last count. */
  private sinceCount = 0;

  constructor(
    readonly limit: number,
    readonly reserved: number,
    private readonly countOpen: () => number = countOpenFds,
    private readonly now: () => number = Date.now,
  ) {}

  /** Open descriptors now: counted at most once a second, in between estimated from agent sockets. */
  open(): number {
    if (this.now() - this.countedAt >= RECOUNT_MS) {
      try {
        this.counted = this.countOpen();
        this.sinceCount = 0;
        this.countedAt = this.now();
      } catch {
        // EMFILE or no /proc: the estimate stands
      }
    }
    return this.counted + this.sinceCount;
  }

  /** Takes a new agent socket in, or refuses it (1013) when only the reserve is left; false when refused. */
  admitAgent(socket: WebSocket): boolean {
    const full = this.open() >= this.limit - this.reserved;
    this.sinceCount++;
    socket.once('close', () => { this.sinceCount--; });
    if (!full) return true;
    this.agentSocketsRefused++;
    socket.close(CloseCode.tryAgainLater, 'server at its connection limit: try again later');
    return false;
  }
}

/** Entries of /proc/self/fd, less the one the listing itself holds. */
function countOpenFds(): number {
  return fs.readdirSync('/proc/self/fd').length - 1;
}
