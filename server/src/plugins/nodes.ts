import fp from 'fastify-plugin';
import { NodeRegistry } from '../live/node-registry.js';
import { NodesRepository } from '../repositories/nodes-repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    nodeRegistry: NodeRegistry;
  }
}

/** The live state of every node (memory, flushed to the database; again at once when the disk has room). */
export const nodesPlugin = fp(async (app) => {
  // Replicas of a lab on one PostgreSQL database: other processes change the same nodes.
  const shared = Boolean(app.config.natsUrl && app.config.databaseUrl);
  const registry = await new NodeRegistry(new NodesRepository(app.sql), app.demoRegistry, app.config.flushIntervalMs, app.deferredWrites).load({ keepStatus: shared, sharedDatabase: shared });
  app.storage.on('changed', ({ state }) => { if (state === 'ok' || state === 'low') void registry.flush(); });
  registry.start();
  app.decorate('nodeRegistry', registry);
  app.addHook('onClose', async () => registry.stop());
}, { name: 'nodes', dependencies: ['db', 'demos', 'storage'] });
