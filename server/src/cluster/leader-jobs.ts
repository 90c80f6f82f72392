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

/**
 * Runs the jobs while this replica holds the lease: started in order when it is elected, stopped
 * in the reverse order when it is deposed (or unbound). Changes are applied one after the other,
 * so a lease lost while the jobs start stops them once they have started. A job that fails to
 * start or stop is logged; the others go on. Returns the function that unbinds (and stops them).
 */
export function runAsLeader(lease: Pick<LeaderLease, 'on' | 'off' | 'isLeader'>, jobs: LeaderJob[], log: FastifyBaseLogger): () => Promise<void> {
  let running = false;
  let changes: Promise<void> = Promise.resolve();
  const step = async (job: LeaderJob, what: 'start' | 'stop') => {
    try {
      await job[what]();
    } catch (err) {
      log.error({ job: job.name, err: (err as Error).message }, `a leader job failed to ${what}`);
    }
  };
  const apply = (lead: boolean) => {
    changes = changes.then(async () => {
      if (lead === running) return;
      running = lead;
      if (lead) {
        log.info({ jobs: jobs.map((j) => j.name) }, 'elected: running the leader jobs');
        for (const job of jobs) await step(job, 'start');
      } else {
        log.info('no longer the leader: leader jobs stopped');
        for (const job of [...jobs].reverse()) await step(job, 'stop');
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
