import type { FastifyInstance } from 'fastify';
import type { NodeLink } from '../hub/node-link.js';
import type {} from './cluster.js';

/** What the services talk to agents through: the cluster link on a replica (DVIC_NATS_URL), else the agent hub. */
export function nodeLinkOf(app: FastifyInstance): NodeLink {
  return app.hasDecorator('cluster') ? app.cluster.link : app.agentHub;
}
