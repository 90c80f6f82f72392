import type { FastifyBaseLogger } from 'fastify';
import type { LeaderLease } from './leader-lease.js';

/**
 * Work only one replica does at a time (alert evaluation, retention, rollups, periodic cleanups).
 * start() rebuilds what it needs from the database and the live registries: it may run on a
 * replica that was a follower a moment ago.
 */
export interface LeaderJob {
  name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/** A job that failed to start is tried again after this, doubling up to RETRY_MAX_MS, while the term lasts. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

/**
 * Runs the jobs while this replica holds the lease: started in order when it is elected, stopped
 * in the reverse order when it is deposed (or unbound). Changes are applied one after the other,
 * so a lease lost while the jobs start stops them once they have started.
 *
 * A job that fails to start is logged and tried again (a doubling wait, while the term lasts), and
 * the jobs after it wait for it: they depend on the ones before (the alert engine on the outbox
 * relay, which records nothing while it is not running; the relay on the deliveries). Only the
 * jobs that started are stopped; a job that fails to stop is logged. Returns the function that
 * unbinds (and stops them).
 */
export function runAsLeader(lease: Pick<LeaderLease, 'on' | 'off' | 'isLeader'>, jobs: LeaderJob[], log: FastifyBaseLogger): () => Promise<void> {
  let running = false;
  /** Counts the terms: a retry timer of an earlier one does nothing. */
  let term = 0;
  let started = 0;
  let retry: NodeJS.Timeout | undefined;
  let changes: Promise<void> = Promise.resolve();
  const step = async (job: LeaderJob, what: 'start' | 'stop'): Promise<boolean> => {
    try {
      await job[what]();
      return true;
    } catch (err) {
      log.error({ job: job.name, err: (err as Error).message }, `a leader job failed to ${what}`);
      return false;
    }
  };
  /** Starts the jobs from the first not started; at a failure, tries again later from there. */
  const startRest = async (attempt: number) => {
    for (; started < jobs.length; started++) {
      const job = jobs[started]!;
      if (!(await step(job, 'start'))) {
        const thisTerm = term;
        const waitMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** attempt);
        log.warn({ job: job.name, waitMs, waiting: jobs.slice(started + 1).map((j) => j.name) }, 'trying the leader job again later; the jobs after it wait');
        retry = setTimeout(() => {
          changes = changes.then(() => (running && term === thisTerm ? startRest(attempt + 1) : undefined));
        }, waitMs);
        retry.unref();
        return;
      }
    }
  };
  const apply = (lead: boolean) => {
    changes = changes.then(async () => {
      if (lead === running) return;
      running = lead;
      term++;
      clearTimeout(retry);
      if (lead) {
        log.info({ jobs: jobs.map((j) => j.name) }, 'elected: running the leader jobs');
        await startRest(0);
      } else {
        log.info('no longer the leader: leader jobs stopped');
        for (const job of jobs.slice(0, started).reverse()) await step(job, 'stop');
        started = 0;
      }
    });
  };
  const onElected = () => apply(true);
  const onDeposed = () => apply(false);
  lease.on('elected', onElected);
  lease.on('deposed', onDeposed);
  if (lease.isLeader()) apply(true);
  return async () => {
    lease.off('elected', onElected);
    lease.off('deposed', onDeposed);
    apply(false);
    await changes;
  };
}
