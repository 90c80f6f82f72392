// What the server and the agents say about themselves, as the page shows it (pure: unit-tested).
import type { AgentStatus, ServerStatus } from '@dvic/protocol/shared';

export interface Banner {
  tone: 'warn' | 'bad';
  text: string;
}

/** The banner for the server's storage, or null while it can store everything. */
export function storageBanner(server: ServerStatus | null): Banner | null {
  const storage = server?.storage;
  if (!storage || storage.state === 'ok') return null;
  const detail = storage.message ? ` (${storage.message})` : '';
  if (storage.state === 'low') return { tone: 'warn', text: `⚠ The server's disk is nearly full: old logs are deleted sooner${detail}.` };
  const what = storage.state === 'full' ? "The server's disk is full" : 'The server cannot write to its database';
  return { tone: 'bad', text: `⚠ ${what}: new logs are refused, agents keep them until there is room${detail}.` };
}

/** Problems an agent reports about itself: its own list, plus workers that stopped. */
export function agentProblemCount(status: AgentStatus | null): number {
  if (!status) return 0;
  return status.problems.length + status.workers.filter((w) => !w.alive).length;
}

/** One line per problem, for a tooltip. */
export function agentProblemLines(status: AgentStatus | null): string[] {
  if (!status) return [];
  return [
    ...status.workers.filter((w) => !w.alive).map((w) => `worker ${w.name} stopped${w.last_error ? `: ${w.last_error}` : ''}`),
    ...status.problems.map((p) => `${p.message}${p.subject ? ` (${p.subject})` : ''}${p.count > 1 ? ` ×${p.count}` : ''}`),
  ];
}
