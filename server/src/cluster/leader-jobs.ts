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
  /** It needs the job before it in the list running (the alert engine needs the outbox relay): it starts only after that one did. */
  afterPrevious?: boolean;
}

/** A job that failed to start is tried again after this, doubling up to RETRY_MAX_MS, while the term lasts. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

/**
 * Runs the jobs while this replica holds the lease: started in order when it is elected, stopped
 * in the reverse order when it is deposed (or unbound). Changes are applied one after the other,
 * so a lease lost while the jobs start stops them once they have started.
 *
 * A job that fails to start is stopped (what it began is undone), logged and tried again (a
 * doubling wait, while the term lasts): the database may be away a moment, and the outbox relay
 * not running would leave alerting dead for the whole term. The others go on, but for those that
 * need it (`afterPrevious`), which wait for it. Only the jobs that started are stopped; a job
 * that fails to stop is logged. Returns the function that unbinds (and stops them).
 */
export function runAsLeader(lease: Pick<LeaderLease, 'on' | 'off' | 'isLeader'>, jobs: LeaderJob[], log: FastifyBaseLogger): () => Promise<void> {
  let running = false;
  /** Counts the terms: a retry timer of an earlier one does nothing. */
  let term = 0;
  const started = new Set<LeaderJob>();
  const retries = new Set<NodeJS.Timeout>();
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
  /** The jobs right after jobs[index] that need it (and so wait for it). */
  const dependentsOf = (index: number): string[] => {
    const names: string[] = [];
    for (let i = index + 1; jobs[i]?.afterPrevious; i++) names.push(jobs[i]!.name);
    return names;
  };
  /** Starts the job, then the ones after it that need it; a failure is undone and tried again later. */
  const startChain = async (index: number, attempt: number): Promise<void> => {
    const job = jobs[index]!;
    if (!(await step(job, 'start'))) {
      await step(job, 'stop');
      const thisTerm = term;
      const waitMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** attempt);
      log.warn({ job: job.name, waitMs, waiting: dependentsOf(index) }, 'trying the leader job again later');
      const timer = setTimeout(() => {
        retries.delete(timer);
        changes = changes.then(() => (running && term === thisTerm ? startChain(index, attempt + 1) : undefined));
      }, waitMs);
      timer.unref();
      retries.add(timer);
      return;
    }
    if (attempt) log.info({ job: job.name, attempt: attempt + 1 }, 'a leader job started on a later try');
    started.add(job);
    if (jobs[index + 1]?.afterPrevious) await startChain(index + 1, 0);
  };
  const apply = (lead: boolean) => {
    changes = changes.then(async () => {
      if (lead === running) return;
      running = lead;
      term++;
      if (lead) {
        log.info({ jobs: jobs.map((j) => j.name) }, 'elected: running the leader jobs');
        for (const [index, job] of jobs.entries()) if (index === 0 || !job.afterPrevious) await startChain(index, 0);
      } else {
        log.info('no longer the leader: leader jobs stopped');
        for (const timer of retries) clearTimeout(timer);
        retries.clear();
        for (const job of [...jobs].reverse()) if (started.delete(job)) await step(job, 'stop');
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
