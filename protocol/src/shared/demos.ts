import type { DemoView, LabDemo } from '../generated/types.js';

/**
 * Why a demo's log file is not to be believed, or null when it is: its owner is neither root nor
 * the user the demo claims, so another user may be writing in its name.
 */
export function untrustedReason(demo: Pick<DemoView, 'trusted' | 'file_uid'>): string | null {
  return demo.trusted ? null : `file owned by uid ${demo.file_uid ?? 'unknown'}, not the demo's user`;
}

/** "1 demo", "2 demos" (regular English plurals; pass the plural when it is not word + s). */
export const plural = (n: number, word: string, many = `${word}s`): string => `${n} ${n === 1 ? word : many}`;

type DemoHealthFields = Pick<LabDemo, 'state' | 'down' | 'expected' | 'crash_loop'>;

/**
 * How a demo looks to the lab, most urgent first: down (expected and not running), crash loop,
 * crashed, restarting, running, stopped (grey: an unexpected demo that ended; dismissible).
 */
export type DemoHealth = 'down' | 'crash-loop' | 'crashed' | 'restarting' | 'running' | 'stopped';

export function demoHealth(demo: DemoHealthFields): DemoHealth {
  if (demo.down) return 'down';
  if (demo.crash_loop) return 'crash-loop';
  if (demo.state === 'crashed' && demo.expected) return 'crashed';
  if (demo.state === 'restarting') return 'restarting';
  if (demo.state === 'running') return 'running';
  return demo.state === 'crashed' ? 'crashed' : 'stopped';
}

const HEALTH_RANK: Record<DemoHealth, number> = { down: 0, 'crash-loop': 1, crashed: 2, restarting: 3, running: 4, stopped: 5 };

/** Problems first, then by name: the order of the demos page and the wall. */
export const compareDemoHealth = (a: DemoHealthFields & { name: string }, b: DemoHealthFields & { name: string }): number =>
  HEALTH_RANK[demoHealth(a)] - HEALTH_RANK[demoHealth(b)] || a.name.localeCompare(b.name);

/** Whether a demo needs someone: on the wall's problem list. */
export const isDemoProblem = (demo: DemoHealthFields): boolean => {
  const health = demoHealth(demo);
  return health === 'down' || health === 'crash-loop' || health === 'crashed';
};

/** The words for a demo's health ("down", "crash loop", ...), so colour is never the only signal. */
export const DEMO_HEALTH_TEXT: Record<DemoHealth, string> = {
  down: 'down', 'crash-loop': 'crash loop', crashed: 'crashed', restarting: 'restarting', running: 'running', stopped: 'stopped',
};
