import type { FastifyBaseLogger } from 'fastify';
import type { LeaderJob } from './leader-jobs.js';

/** One kind of work that lives in the memory of the replica running it (commands, enrollments...). */
export interface OwnedWork {
  name: string;
  /** The replicas that own unfinished work of this kind. */
  owners(): Promise<string[]>;
  /** Ends the unfinished work of a replica that is gone, as its own restart would have; returns how many. */
  endOwnedBy(owner: string): Promise<number>;
}

export interface OrphanedWorkOptions {
  /** This replica: its own work is its own to end (at its start). */
  self: string;
  /** Whether no process of that replica is running now (cluster/replica-presence.ts). */
  gone(replica: string): Promise<boolean>;
  /** How often the leader looks. */
  periodMs: number;
  log: FastifyBaseLogger;
}

/**
 * The leader ends the unfinished work of replicas that are gone (died, or restarted under another
 * id): nobody else would, since each replica ends only its own at start. A replica must be seen
 * gone twice in a row, a period apart, so that one cut off from the bus for a moment (its
 * subscriptions come back when it reconnects) keeps its work.
 */
export function orphanedWorkJob(kinds: OwnedWork[], options: OrphanedWorkOptions): LeaderJob {
  let timer: NodeJS.Timeout | undefined;
  let suspects = new Set<string>();
  let sweeping: Promise<void> = Promise.resolve();

  const endAll = async (owner: string) => {
    for (const kind of kinds) {
      const ended = await kind.endOwnedBy(owner);
      if (ended) options.log.warn({ replica: owner, kind: kind.name, ended }, "ended the unfinished work of a replica that is gone");
    }
  };
  const sweep = async () => {
    const owners = new Set((await Promise.all(kinds.map((k) => k.owners()))).flat());
    owners.delete(options.self);
    const seenGone = new Set<string>();
    for (const owner of owners) {
      if (!(await options.gone(owner))) continue;
      if (suspects.has(owner)) await endAll(owner);
      else seenGone.add(owner);
    }
    suspects = seenGone;
  };
  const tick = () => {
    sweeping = sweep().catch((err: unknown) => options.log.error({ err: (err as Error).message }, 'could not look for work of gone replicas'))
      .finally(() => { if (timer) timer = setTimeout(tick, options.periodMs).unref(); });
  };
  return {
    name: 'work of gone replicas',
    start: () => {
      suspects = new Set();
      timer = setTimeout(tick, 0).unref();
    },
    stop: async () => {
      clearTimeout(timer);
      timer = undefined;
      await sweeping;
    },
  };
}
