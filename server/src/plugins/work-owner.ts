import type { FastifyInstance } from 'fastify';
import type {} from './cluster.js';

/**
 * Whose work a replica stamps and ends at start (commands, enrollments, agent updates, deployments
 * live in the memory of the process that runs them). `replica`: stamped on the rows it makes.
 * `recoverOnly`: at start it ends only its own unfinished rows when other live replicas share its
 * database (DVIC_NATS_URL and DVIC_DATABASE_URL); the leader ends those of replicas that are gone
 * (cluster/orphaned-work.ts). undefined on a single server: it ends all of them, as ever.
 */
export function workOwnerOf(app: FastifyInstance): { replica: string; recoverOnly: string | undefined } {
  const replica = app.config.replicaId;
  const shared = app.hasDecorator('cluster') && app.config.databaseUrl !== undefined;
  return { replica, recoverOnly: shared ? replica : undefined };
}
